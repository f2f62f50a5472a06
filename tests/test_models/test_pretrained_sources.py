"""Every weight source timm supports, for the GFNet models as for timm's own: a file (.pth or
.safetensors), a URL, ``local-dir:`` and ``hf-hub:`` (timm's Hugging Face layout, offline here);
``tools/convert_checkpoint.py --hf`` writing that layout; safetensors in the segmentation paths."""
import importlib.util
import os
import shutil

import pytest
import safetensors.torch
import timm
import torch
from timm.models import save_for_hf

from gfnet_seg.models import load_checkpoint
from gfnet_seg.models.gfnet import MODEL_NAMES

WIDTHS = {'gfnet_h_ti': dict(embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1)),
          'gfnet_ti': dict(embed_dim=32, depth=2)}
SIZE = 64
IMAGES = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def create(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    return timm.create_model(name, **{'img_size': SIZE, **WIDTHS[name], **kwargs}).eval()


def outputs(model, images=IMAGES):
    with torch.no_grad():
        return model(images)


@pytest.fixture
def no_default_files(tmp_path, monkeypatch):
    """A working directory without ``checkpoints/``: only the source a test names can be read."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize('name', ['gfnet_h_ti', 'gfnet_ti'])
def test_save_for_hf_round_trip_through_local_dir(name, tmp_path, no_default_files):
    source = create(name, seed=1, num_classes=10)
    save_for_hf(source, tmp_path / 'hf', safe_serialization=True)
    model = timm.create_model(f'local-dir:{tmp_path / "hf"}', pretrained=True).eval()
    assert model.pretrained_cfg['source'] == 'local-dir' and model.num_classes == 10
    assert torch.equal(outputs(model), outputs(source))
    # Another num_classes, as in timm: the head is new, the rest is the file's.
    other = timm.create_model(f'local-dir:{tmp_path / "hf"}', pretrained=True, num_classes=3).eval()
    with torch.no_grad():
        assert torch.equal(other.forward_features(IMAGES), source.forward_features(IMAGES))


def test_hf_hub_from_an_offline_cache(tmp_path, monkeypatch, no_default_files):
    """``hf-hub:`` through huggingface_hub itself, offline, from a cache laid out as a download leaves it."""
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    source = create('gfnet_h_ti', seed=2)
    save_for_hf(source, tmp_path / 'export', safe_serialization=True)
    revision = 'a' * 40
    repo = tmp_path / 'cache' / 'models--gfnet-seg--tiny'
    (repo / 'refs').mkdir(parents=True)
    (repo / 'refs' / 'main').write_text(revision)
    shutil.copytree(tmp_path / 'export', repo / 'snapshots' / revision)
    model = timm.create_model('hf-hub:gfnet-seg/tiny', pretrained=True, cache_dir=tmp_path / 'cache').eval()
    assert model.pretrained_cfg['hf_hub_id'] == 'gfnet-seg/tiny'
    assert torch.equal(outputs(model), outputs(source))


@pytest.mark.parametrize('fmt', ['pth', 'safetensors', 'safetensors-named-bin'])
def test_file_source_pth_and_safetensors(fmt, tmp_path, no_default_files):
    source = create('gfnet_h_ti', seed=3)
    if fmt == 'pth':
        path = tmp_path / 'weights.pth'
        torch.save({'model': source.state_dict(), 'epoch': 3}, path)
    else:  # safetensors, known by its extension or by its first bytes
        path = tmp_path / ('weights.safetensors' if fmt == 'safetensors' else 'weights.bin')
        safetensors.torch.save_file(source.state_dict(), path)
    model = create('gfnet_h_ti', seed=4, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    assert torch.equal(outputs(model), outputs(source))
    assert 'state_dict' not in model.pretrained_cfg  # the weights are not kept around


def test_file_source_keeps_a_head_that_fits_and_adapts_in_chans(tmp_path, no_default_files):
    source = create('gfnet_h_ti', seed=5, num_classes=10)
    path = str(tmp_path / 'finetuned.pth')
    torch.save({'model': source.state_dict()}, path)
    overlay = dict(file=path)
    kept = create('gfnet_h_ti', pretrained=True, pretrained_cfg_overlay=overlay, num_classes=10)
    assert torch.equal(outputs(kept), outputs(source))
    default = create('gfnet_h_ti', pretrained=True, pretrained_cfg_overlay=overlay)
    assert default.num_classes == 1000  # the model is built as without the file; its head is new
    grey = create('gfnet_h_ti', pretrained=True, pretrained_cfg_overlay=overlay, num_classes=10, in_chans=1)
    stem = source.state_dict()['patch_embed.0.proj.weight']
    torch.testing.assert_close(grey.state_dict()['patch_embed.0.proj.weight'], stem.sum(1, keepdim=True))


def test_url_source_is_fetched_only_when_named(tmp_path, no_default_files):
    source = create('gfnet_ti', seed=6)
    torch.save({'model': source.state_dict()}, tmp_path / 'remote.pth')
    url = (tmp_path / 'remote.pth').as_uri()
    model = create('gfnet_ti', pretrained=True, pretrained_cfg_overlay=dict(url=url), cache_dir=tmp_path / 'cache')
    assert torch.equal(outputs(model), outputs(source))
    assert os.listdir(tmp_path / 'cache') == ['remote.pth']


def test_default_cfgs_name_local_files_only(tmp_path, no_default_files):
    for name in MODEL_NAMES:
        cfg = timm.models.get_pretrained_cfg(name)
        assert cfg.file == f"checkpoints/{name.replace('_', '-')}.pth" and not cfg.url and not cfg.hf_hub_id
    with pytest.raises(FileNotFoundError, match=r"official 'gfnet-ti.pth' from https://github.com/raoyongming"):
        create('gfnet_ti', pretrained=True)
    with pytest.raises(FileNotFoundError, match='not found: .*elsewhere.pth'):
        create('gfnet_ti', pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / 'elsewhere.pth')))


def _convert_tool():
    path = os.path.join(os.path.dirname(__file__), '..', '..', 'tools', 'convert_checkpoint.py')
    spec = importlib.util.spec_from_file_location('convert_checkpoint', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_convert_official_and_train_cls_checkpoints_to_hf(tmp_path, no_default_files, capsys):
    import argparse
    convert = _convert_tool()
    official = create('gfnet_ti', seed=7)
    torch.save({'model': official.state_dict(), 'args': argparse.Namespace(lr=1e-3)}, tmp_path / 'official.pth')
    convert([str(tmp_path / 'official.pth'), str(tmp_path / 'official-hf'), '--hf'])
    assert sorted(os.listdir(tmp_path / 'official-hf')) == ['config.json', 'model.safetensors']
    model = timm.create_model(f'local-dir:{tmp_path / "official-hf"}', pretrained=True).eval()
    assert torch.equal(outputs(model), outputs(official))

    trained, ema = create('gfnet_h_ti', seed=8, num_classes=4), create('gfnet_h_ti', seed=9, num_classes=4)
    torch.save({'model': trained.state_dict(), 'model_ema': ema.state_dict(), 'optimizer': {}, 'epoch': 3,
                'max_accuracy': 50., 'args': {'arch': 'h-ti', 'input_size': SIZE}}, tmp_path / 'checkpoint.pth')
    for key, expected in ((None, trained), ('model_ema', ema)):
        out = tmp_path / f'train-cls-{key}'
        convert([str(tmp_path / 'checkpoint.pth'), str(out), '--hf'] + (['--key', key] if key else []))
        model = timm.create_model(f'local-dir:{out}', pretrained=True).eval()
        assert model.num_classes == 4 and torch.equal(outputs(model), outputs(expected))
    assert 'wrote' in capsys.readouterr().out


def test_convert_mmengine_backbone_checkpoint_to_hf(tmp_path, no_default_files):
    from gfnet_seg.models.backbones.gfnet_h import GFNetH
    torch.manual_seed(10)
    backbone = GFNetH(arch=dict(WIDTHS['gfnet_h_ti'], layer_scale_init=1e-3), img_size=SIZE).eval()
    for i in range(4):  # LayerNorms that differ from their initialisation
        getattr(backbone, f'norm{i}').weight.data.uniform_(0.5, 1.5)
    weights = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    torch.save({'meta': {'epoch': 1}, 'state_dict': {**weights, 'decode_head.conv_seg.weight': torch.zeros(2, 8, 1, 1)},
                'message_hub': {}}, tmp_path / 'iter_300.pth')
    _convert_tool()([str(tmp_path / 'iter_300.pth'), str(tmp_path / 'hf'), '--hf'])
    with torch.no_grad():
        expected, stages = backbone(IMAGES), backbone.forward_stages(IMAGES)
        model = timm.create_model(f'local-dir:{tmp_path / "hf"}', pretrained=True).eval()
        assert model.num_classes == 0
        assert torch.equal(model.forward_features(IMAGES).permute(0, 3, 1, 2), expected[-1])
        features = timm.create_model(f'local-dir:{tmp_path / "hf"}', pretrained=True, features_only=True).eval()
        for got, want in zip(features(IMAGES), stages):
            assert torch.equal(got, want.permute(0, 3, 1, 2))


def test_gfnet_h_init_cfg_and_timm_backbone_read_safetensors(tmp_path):
    from mmseg.models.backbones import TIMMBackbone

    from gfnet_seg.models.backbones.gfnet_h import GFNetH
    """init_cfg reads safetensors by content too (torch >= 2.1 reads neither; torch.load only the
    extension in newer releases): here a Hugging Face cache blob, named by its hash. TIMMBackbone
    goes through timm's checkpoint_path, which knows the extension."""
    source = create('gfnet_h_ti', seed=11, img_size=32)  # at another size: filters get resized
    path, blob = str(tmp_path / 'in1k.safetensors'), str(tmp_path / ('0123abcd' * 8))
    safetensors.torch.save_file(source.state_dict(), path)
    shutil.copy(path, blob)
    oracle = create('gfnet_h_ti', seed=12)
    report = load_checkpoint(oracle, {'model': source.state_dict()})
    assert 'pos_embed' in report.resized
    expected = oracle.state_dict()

    backbone = GFNetH(arch=dict(WIDTHS['gfnet_h_ti'], layer_scale_init=1e-3), img_size=SIZE,
                      init_cfg=dict(type='Pretrained', checkpoint=blob))
    backbone.init_weights()
    for key, value in backbone.state_dict().items():
        if not key.startswith('norm'):
            assert torch.equal(value, expected[key]), key

    timm_backbone = TIMMBackbone('gfnet_h_ti', pretrained=False, checkpoint_path=path, img_size=SIZE,
                                 **WIDTHS['gfnet_h_ti'])
    for key, value in timm_backbone.timm_model.model.state_dict().items():
        assert torch.equal(value, expected[key]), key
