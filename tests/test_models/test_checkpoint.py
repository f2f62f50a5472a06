"""Checkpoint reading and adaptation: wrappers, resizing, safety, and loud failures."""
import argparse

import pytest
import torch

from gfnet_seg.models import (UnsafeCheckpointError, adapt_state_dict, create_gfnet, load_checkpoint,
                              read_checkpoint, resize_filter, resize_pos_embed, unwrap_state_dict)

TINY = dict(embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1))


def tiny(**kwargs):
    return create_gfnet('h-ti', **TINY, **kwargs)


@pytest.mark.parametrize('wrap', [
    lambda sd: {'model': sd, 'epoch': 3},
    lambda sd: {'model_ema': sd},
    lambda sd: {'state_dict': {f'module.{k}': v for k, v in sd.items()}, 'meta': {}},
    lambda sd: {'state_dict': {**{f'backbone.{k}': v for k, v in sd.items()}, 'decode_head.conv.weight': torch.zeros(1)}},
    lambda sd: sd,
])
def test_unwrap_known_layouts(wrap):
    state_dict = tiny().state_dict()
    unwrapped = unwrap_state_dict(wrap(state_dict))
    assert unwrapped.keys() == state_dict.keys()


def test_unwrap_picks_requested_wrapper():
    model_sd, ema_sd = tiny().state_dict(), tiny().state_dict()
    chosen = unwrap_state_dict({'model': model_sd, 'model_ema': ema_sd}, 'model_ema')
    assert torch.equal(chosen['pos_embed'], ema_sd['pos_embed'])
    with pytest.raises(KeyError, match="no 'model_ema'"):
        unwrap_state_dict({'model': model_sd}, 'model_ema')


def test_adapt_resizes_filters_and_pos_embed_non_square():
    source = tiny(img_size=224).state_dict()
    target_model = tiny(img_size=(256, 320))
    adapted, resized, dropped = adapt_state_dict(source, target_model)
    assert 'pos_embed' in resized and 'blocks.3.0.filter.complex_weight' in resized and not dropped
    torch.testing.assert_close(adapted['pos_embed'], resize_pos_embed(source['pos_embed'], (64, 80), (56, 56)))
    for stage, grid in enumerate([(64, 80), (32, 40), (16, 20), (8, 10)]):
        key = f'blocks.{stage}.0.filter.complex_weight'
        expected = resize_filter(source[key], (grid[0], grid[1] // 2 + 1))
        torch.testing.assert_close(adapted[key], expected)
    target_model.load_state_dict(adapted, strict=True)


def test_pos_embed_source_grid_read_from_filter_for_non_square_checkpoints():
    source = tiny(img_size=(128, 256)).state_dict()
    adapted, _, _ = adapt_state_dict(source, tiny(img_size=(256, 512)))
    expected = resize_pos_embed(source['pos_embed'], (64, 128), (32, 64))
    torch.testing.assert_close(adapted['pos_embed'], expected)


def test_mismatched_head_dropped_and_reported():
    report = load_checkpoint(tiny(num_classes=10), {'model': tiny(num_classes=1000).state_dict()})
    assert report.dropped == ['head.weight', 'head.bias']
    assert report.missing == ['head.weight', 'head.bias']


def test_other_architecture_is_a_shape_mismatch_error():
    wider = create_gfnet('h-ti', embed_dims=(16, 16, 24, 32), depths=(1, 1, 1, 1)).state_dict()
    with pytest.raises(ValueError, match=r'shape mismatches.*patch_embed\.0\.proj\.weight'):
        load_checkpoint(tiny(), {'model': wider})


def test_checkpoint_without_any_model_weight_raises():
    with pytest.raises(ValueError, match='no weight of GFNetPyramid'):
        load_checkpoint(tiny(), {'model': {'encoder.layer.0.weight': torch.zeros(3)}})


def test_strict_reports_missing_keys():
    state_dict = tiny().state_dict()
    del state_dict['norm.weight']
    with pytest.raises(ValueError, match=r'missing \(1\): norm.weight'):
        load_checkpoint(tiny(), state_dict, strict=True)


def test_files_with_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / 'official_with_args.pth'
    torch.save({'model': tiny().state_dict(), 'args': argparse.Namespace(lr=1e-3)}, path)
    with pytest.raises(UnsafeCheckpointError, match='convert_checkpoint.py'):
        read_checkpoint(str(path))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        read_checkpoint(str(tmp_path / 'missing.pth'))


def test_convert_tool_makes_refused_file_loadable(tmp_path, python, repo_root):
    import subprocess
    src, dst = tmp_path / 'with_args.pth', tmp_path / 'weights.pth'
    model = tiny()
    torch.save({'model_ema': model.state_dict(), 'args': argparse.Namespace(lr=1e-3)}, src)
    result = subprocess.run([python, 'tools/convert_checkpoint.py', str(src), str(dst)], cwd=repo_root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    reloaded = tiny()
    report = load_checkpoint(reloaded, str(dst), strict=True)
    assert len(report.loaded) == len(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value)


def test_safetensors_files_and_hf_folders_read_as_pth_files(tmp_path):
    from safetensors.torch import save_file
    from timm.models import save_for_hf

    from gfnet_seg.fileio import IncompleteFileError
    model = tiny(img_size=64)
    save_file(model.state_dict(), tmp_path / 'weights.safetensors')
    (tmp_path / 'weights.bin').write_bytes((tmp_path / 'weights.safetensors').read_bytes())  # known by content
    save_for_hf(model, tmp_path / 'hf', safe_serialization=True)
    save_for_hf(model, tmp_path / 'hf-pickle')  # pytorch_model.bin
    for path in ('weights.safetensors', 'weights.bin', 'hf', 'hf-pickle'):
        reloaded = tiny(img_size=64)
        report = load_checkpoint(reloaded, str(tmp_path / path), strict=True)
        assert len(report.loaded) == len(model.state_dict()), path
        for key, value in model.state_dict().items():
            assert torch.equal(reloaded.state_dict()[key], value), (path, key)
    whole = (tmp_path / 'weights.safetensors').read_bytes()
    (tmp_path / 'cut.safetensors').write_bytes(whole[:len(whole) // 2])
    with pytest.raises(IncompleteFileError, match='cut.safetensors is truncated or corrupt'):
        read_checkpoint(str(tmp_path / 'cut.safetensors'))
    with pytest.raises(FileNotFoundError, match='model.safetensors or pytorch_model.bin'):
        read_checkpoint(str(tmp_path))
