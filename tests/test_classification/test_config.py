"""Flags, YAML configs, model building and data checks of tools/train_cls.py (no training)."""
import datetime
import os
import re

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from gfnet_seg import ARCH_SETTINGS
from gfnet_seg.classification import (args_to_dict, build_dataset, build_loaders, build_model, build_optimizer,
                                      build_transform, effective_lr, main, parse_args)

from cls_utils import COLOURS, make_image_folder


def test_defaults_are_the_paper_recipe():
    args = parse_args([])
    assert (args.epochs, args.opt, args.lr, args.weight_decay, args.sched) == (300, 'adamw', 5e-4, 0.05, 'cosine')
    assert (args.warmup_epochs, args.warmup_lr, args.min_lr) == (5, 1e-6, 1e-5)
    assert (args.smoothing, args.mixup, args.cutmix, args.clip_grad) == (0.1, 0.8, 1.0, 1.0)
    assert (args.aa, args.train_interpolation) == ('rand-m9-mstd0.5-inc1', 'bicubic')
    assert args.drop_path is None  # taken from the model table
    # lr is given for a total batch of 512 and scales linearly.
    assert effective_lr(parse_args(['--batch-size', '64']), world=2) == pytest.approx(5e-4 / 4)
    assert effective_lr(parse_args(['--batch-size', '64', '--unscale-lr']), world=2) == 5e-4


def test_yaml_config_sets_defaults_and_command_line_wins(tmp_path):
    config = tmp_path / 'recipe.yaml'
    config.write_text(yaml.safe_dump({'epochs': 30, 'batch-size': 32, 'model_ema': True, 'data-set': 'cifar100'}))
    args = parse_args(['--config', str(config), '--epochs', '3'])
    assert (args.epochs, args.batch_size, args.model_ema, args.data_set) == (3, 32, True, 'CIFAR100')

    config.write_text(yaml.safe_dump({'epochs': 30, 'lr_typo': 1.0}))
    with pytest.raises(ValueError, match='lr_typo'):
        parse_args(['--config', str(config)])
    with pytest.raises(FileNotFoundError, match='missing.yaml'):
        parse_args(['--config', str(tmp_path / 'missing.yaml')])


@pytest.mark.parametrize('arch', sorted(ARCH_SETTINGS))
def test_every_arch_builds_with_official_and_timm_names(arch):
    pyramid = 'embed_dims' in ARCH_SETTINGS[arch]
    widths = ['--embed-dims', '8', '16', '24', '32', '--depths', '1', '1', '1', '1'] if pyramid \
        else ['--embed-dims', '16', '--depths', '2']
    official = build_model(parse_args(['--arch', f'gfnet-{arch}', '--input-size', '32', *widths]), num_classes=3)
    timm_name = build_model(parse_args(['--arch', f'gfnet_{arch.replace("-", "_")}', '--input-size', '32', *widths]),
                            num_classes=3)
    assert official.state_dict().keys() == timm_name.state_dict().keys()
    assert official(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    expected_drop_path = ARCH_SETTINGS[arch]['drop_path_rate']
    drop_paths = [m.drop_prob for m in official.modules() if type(m).__name__ == 'DropPath']
    assert max(drop_paths, default=0.) == pytest.approx(expected_drop_path)


def test_isotropic_arch_rejects_per_stage_widths():
    with pytest.raises(ValueError, match='isotropic'):
        build_model(parse_args(['--arch', 'gfnet-ti', '--embed-dims', '8', '16', '24', '32']), num_classes=3)


def test_unknown_arch_lists_the_valid_ones_before_reading_data():
    with pytest.raises(ValueError, match=r"unknown GFNet arch 'gfnet-huge'; valid: ti, xs, s, b, h-ti"):
        main(['--arch', 'gfnet-huge', '--data-path', 'nowhere'])


def test_data_errors_name_the_folder(tmp_path):
    missing = str(tmp_path / 'nowhere')
    for data_path in (missing, ''):
        with pytest.raises(FileNotFoundError, match=f"--data-path '{re.escape(data_path)}' is not a folder"):
            build_dataset(True, parse_args(['--data-path', data_path]))
    os.makedirs(tmp_path / 'empty' / 'train' / 'n00000000')  # a class folder without images
    with pytest.raises(FileNotFoundError, match=os.path.join('no images in .*empty', 'train')):
        build_dataset(True, parse_args(['--data-path', str(tmp_path / 'empty')]))
    with pytest.raises(FileNotFoundError, match='CIFAR10 not found'):
        build_dataset(True, parse_args(['--data-set', 'CIFAR10', '--data-path', str(tmp_path / 'empty')]))

    data = make_image_folder(tmp_path / 'mismatch', train_per_class=1, val_per_class=(1,) * len(COLOURS))
    os.rename(os.path.join(data, 'val', 'n00000003'), os.path.join(data, 'val', 'n00000009'))
    with pytest.raises(ValueError, match=r"only in train: \['n00000003'\], only in val: \['n00000009'\]"):
        build_loaders(parse_args(['--data-path', data, '--input-size', '32', '--num_workers', '0']), rank=0, world=1)


def test_corrupt_images_are_named(tmp_path):
    data = make_image_folder(tmp_path, train_per_class=2, val_per_class=(1,) * len(COLOURS))
    flags = ['--data-path', data, '--input-size', '32', '--num_workers', '0']
    build_loaders(parse_args(flags), rank=0, world=1)  # sound: no error
    image = os.path.join(data, 'train', 'n00000002', 'train_0001.JPEG')
    with open(image, 'wb') as f:
        f.write(b'not an image')

    # Found before training, by the process whose share of the images holds it.
    with pytest.raises(ValueError, match=f'train: corrupt or unreadable image file {re.escape(image)}'):
        build_loaders(parse_args(flags), rank=0, world=1)
    train_loader, _, _ = build_loaders(parse_args([*flags, '--no-check-images']), rank=0, world=1)
    index = [path for path, _ in train_loader.dataset.samples].index(image)
    with pytest.raises(ValueError, match=re.escape(image)):
        build_loaders(parse_args(flags), rank=index % 2, world=2)
    build_loaders(parse_args(flags), rank=1 - index % 2, world=2)  # the other share is sound
    # Unchecked, it is named when the loader reaches it.
    with pytest.raises(ValueError, match=f'cannot read image {re.escape(image)}'):
        train_loader.dataset[index]


def test_flags_in_a_checkpoint_load_with_weights_only(tmp_path):
    """Every flag, at its default and at values of each kind argparse and YAML produce, survives
    ``torch.load(weights_only=True)`` unchanged in meaning."""
    config = tmp_path / 'recipe.yaml'
    config.write_text('output_dir: 2021-06-01\ncutmix-minmax: [0.2, 0.8]\n')  # YAML reads a date
    flags = parse_args(['--config', str(config), '--opt-betas', '0.9', '0.99', '--embed-dims', '8', '16',
                        '--no-repeated-aug', '--amp', '--drop-path', '0.1'])
    flags.opt_betas = tuple(flags.opt_betas)
    for args in (parse_args([]), flags):
        path = tmp_path / 'args.pth'
        torch.save({'args': args_to_dict(args)}, path)
        loaded = torch.load(path, weights_only=True)['args']
        assert loaded.keys() == vars(args).keys()
        for key, value in vars(args).items():
            expected = list(value) if isinstance(value, tuple) else value
            assert loaded[key] == (str(value) if isinstance(value, datetime.date) else expected), key
    assert loaded['output_dir'] == '2021-06-01' and loaded['opt_betas'] == [0.9, 0.99] and loaded['amp'] is True


@pytest.mark.parametrize('arch, widths', [('gfnet-h-ti', ['--embed-dims', '8', '16', '24', '32', '--depths', '1', '1', '1', '1']),
                                          ('gfnet-ti', ['--embed-dims', '16', '--depths', '2'])])
def test_no_weight_decay_on_position_embedding_norms_biases_and_layer_scales(arch, widths):
    """The DeiT/GFNet recipe decays weight matrices and filters only. Each parameter's group is
    checked against what its name says it is."""
    args = parse_args(['--arch', arch, '--input-size', '32', '--weight-decay', '0.05', *widths])
    model = build_model(args, num_classes=3)
    optimizer = build_optimizer(args, model, lr=1e-3)
    decay_of = {id(p): group['weight_decay'] for group in optimizer.param_groups for p in group['params']}
    names = dict(model.named_parameters())
    assert len(decay_of) == len(names)  # every parameter is optimised, once
    kinds = {'pos_embed': 0, 'norm': 0, 'bias': 0, 'gamma': 0, 'complex_weight': 0.05, 'weight': 0.05}
    seen = set()
    for name, parameter in names.items():
        module, _, leaf = name.rpartition('.')
        if name == 'pos_embed' or leaf in ('bias', 'gamma', 'complex_weight'):
            kind = leaf
        elif 'norm' in module.rpartition('.')[2]:  # norm, norm1, norm2: a LayerNorm's weight
            kind = 'norm'
        else:
            kind = 'weight'
        seen.add(kind)
        assert decay_of[id(parameter)] == kinds[kind], name
    expected_kinds = {'pos_embed', 'norm', 'bias', 'complex_weight', 'weight'} | ({'gamma'} if 'h-' in arch else set())
    assert seen == expected_kinds


def test_eval_resizes_by_crop_pct_then_centre_crops():
    """Above 32 pixels, evaluation resizes the short side to input_size / crop_pct and crops the
    centre (DeiT); checked against Pillow doing exactly that by hand."""
    args = parse_args(['--input-size', '64', '--crop-pct', '0.8'])
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 120, 3), np.uint8))
    short = int(64 / 0.8)  # 80; the long side in proportion, rounded down
    resized = image.resize((int(120 * short / 90), short), Image.BICUBIC)
    left, top = round((resized.width - 64) / 2), round((resized.height - 64) / 2)
    crop = np.asarray(resized.crop((left, top, left + 64, top + 64)), np.float32) / 255
    expected = (crop - IMAGENET_DEFAULT_MEAN) / IMAGENET_DEFAULT_STD
    actual = build_transform(False, args)(image).permute(1, 2, 0).numpy()
    assert actual.shape == (64, 64, 3)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    # 32 pixels and below (CIFAR): taken as they are
    small = Image.fromarray(np.asarray(image)[:32, :32])
    np.testing.assert_allclose(build_transform(False, parse_args(['--input-size', '32']))(small).permute(1, 2, 0),
                               (np.asarray(small, np.float32) / 255 - IMAGENET_DEFAULT_MEAN) / IMAGENET_DEFAULT_STD,
                               atol=1e-6)
