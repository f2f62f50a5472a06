"""--finetune: a checkpoint trained at 224 loads into a 384 model (filters and position embedding
resized, mismatched head dropped) and trains."""
import math
import os

import torch

from gfnet_seg import create_gfnet, resize_filter, resize_pos_embed
from gfnet_seg.classification import build_model, load_pretrained, main, parse_args

from cls_utils import ARCH, COLOURS, DEPTHS, EMBED_DIMS, TINY_MODEL, make_image_folder, read_log


def test_finetune_224_checkpoint_into_384_model(tmp_path):
    source = create_gfnet(ARCH, img_size=224, num_classes=10, embed_dims=EMBED_DIMS, depths=DEPTHS).state_dict()
    checkpoint = str(tmp_path / 'in1k_224.pth')
    torch.save({'model': source}, checkpoint)
    # Eight training images and a batch of eight: exactly one step.
    data = make_image_folder(tmp_path / 'data', train_per_class=2, val_per_class=(1,) * len(COLOURS))
    flags = [*TINY_MODEL, '--input-size', '384', '--data-path', data, '--finetune', checkpoint,
             '--batch-size', '8', '--lr', '1e-4', '--unscale-lr', '--warmup-epochs', '0', '--epochs', '1']

    model = build_model(parse_args(flags), num_classes=len(COLOURS))
    report = load_pretrained(model, checkpoint)
    assert sorted(report.dropped) == ['head.bias', 'head.weight']
    loaded = model.state_dict()
    torch.testing.assert_close(loaded['pos_embed'], resize_pos_embed(source['pos_embed'], (96, 96), (56, 56)))
    for stage, grid in enumerate((96, 48, 24, 12)):
        key = f'blocks.{stage}.0.filter.complex_weight'
        torch.testing.assert_close(loaded[key], resize_filter(source[key], (grid, grid // 2 + 1)))
    for key, value in source.items():
        if not key.startswith('head.') and loaded[key].shape == value.shape:
            assert torch.equal(loaded[key], value), key

    output_dir = str(tmp_path / 'finetune')
    main([*flags, '--output_dir', output_dir])
    log = read_log(output_dir)
    assert len(log) == 1 and math.isfinite(log[0]['train_loss'])
    trained = torch.load(os.path.join(output_dir, 'checkpoint.pth'), weights_only=True)['model']
    key = 'blocks.0.0.filter.complex_weight'
    assert trained[key].shape == loaded[key].shape and not torch.equal(trained[key], loaded[key])
    # One AdamW step moves each weight by about the learning rate: it started from the checkpoint.
    for key, value in loaded.items():
        if not key.startswith('head.'):
            torch.testing.assert_close(trained[key], value, atol=2e-4, rtol=0)


def test_finetune_reads_safetensors(tmp_path):
    """By content, as a Hugging Face cache blob named by its hash (torch.load knows at most the extension)."""
    from safetensors.torch import save_file
    source = create_gfnet(ARCH, img_size=64, num_classes=10, embed_dims=EMBED_DIMS, depths=DEPTHS).state_dict()
    checkpoint = str(tmp_path / ('89abcdef' * 8))
    save_file(source, checkpoint)
    model = build_model(parse_args([*TINY_MODEL, '--input-size', '64']), num_classes=10)
    report = load_pretrained(model, checkpoint)
    assert not report.dropped and not report.missing
    for key, value in model.state_dict().items():
        assert torch.equal(value, source[key]), key


def test_finetune_cli_takes_safetensors_and_hf_folders(tmp_path):
    from safetensors.torch import save_file
    from timm.models import save_for_hf
    model = create_gfnet(ARCH, img_size=64, num_classes=10, embed_dims=EMBED_DIMS, depths=DEPTHS)
    save_file(model.state_dict(), tmp_path / 'in1k.safetensors')
    save_for_hf(model, tmp_path / 'hf', safe_serialization=True)
    data = make_image_folder(tmp_path / 'data', train_per_class=2, val_per_class=(1,) * len(COLOURS))
    for source in ('in1k.safetensors', 'hf'):
        output_dir = str(tmp_path / f'out-{source}')
        main([*TINY_MODEL, '--input-size', '64', '--data-path', data, '--finetune', str(tmp_path / source),
              '--batch-size', '8', '--lr', '1e-4', '--unscale-lr', '--warmup-epochs', '0', '--epochs', '1',
              '--output_dir', output_dir])
        assert math.isfinite(read_log(output_dir)[0]['train_loss'])
