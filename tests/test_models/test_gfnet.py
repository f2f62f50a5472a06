"""The seven published GFNet architectures: sizes, official key names, any-size forward, timm."""
import pytest
import timm
import torch

from gfnet_seg.models import ARCH_SETTINGS, GFNetPyramid, arch_settings, create_gfnet, load_checkpoint

from test_resize_oracles import oracle_filter, oracle_pos_embed

# Published parameter counts (millions) at 224 with 1000 classes.
PUBLISHED_PARAMS = {'gfnet_ti': 7.51, 'gfnet_xs': 15.99, 'gfnet_s': 24.87, 'gfnet_b': 43.12,
                    'gfnet_h_ti': 15.09, 'gfnet_h_s': 32.16, 'gfnet_h_b': 53.74}
MODELS = list(PUBLISHED_PARAMS)


def official_keys(name):
    """State-dict keys of the official release, spelled out from its module layout."""
    settings = arch_settings(name)
    block = ['norm1.weight', 'norm1.bias', 'filter.complex_weight', 'norm2.weight', 'norm2.bias',
             'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias']
    keys = ['pos_embed', 'norm.weight', 'norm.bias', 'head.weight', 'head.bias']
    if 'depths' in settings:
        keys += [f'patch_embed.{i}.proj.{p}' for i in range(4) for p in ('weight', 'bias')]
        keys += [f'blocks.{s}.{i}.{k}' for s, depth in enumerate(settings['depths'])
                 for i in range(depth) for k in block + ['gamma']]
    else:
        keys += ['patch_embed.proj.weight', 'patch_embed.proj.bias']
        keys += [f'blocks.{i}.{k}' for i in range(settings['depth']) for k in block]
    return set(keys)


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    return {name: timm.create_model(name) for name in MODELS}


@pytest.mark.parametrize('name', MODELS)
def test_published_parameter_count(models, name):
    params = sum(p.numel() for p in models[name].parameters()) / 1e6
    assert abs(params - PUBLISHED_PARAMS[name]) < 0.01


@pytest.mark.parametrize('name', MODELS)
def test_state_dict_keys_are_official(models, name):
    assert set(models[name].state_dict()) == official_keys(name)


@pytest.mark.parametrize('name', MODELS)
def test_forward_backward_square_and_non_square(models, name):
    model = models[name].train()
    for size in [(224, 224), (96, 160)]:
        model.zero_grad()
        logits = model(torch.randn(1, 3, *size))
        assert logits.shape == (1, 1000)
        logits.sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_drop_path_and_layer_scale_follow_table(models):
    for name, model in models.items():
        settings = arch_settings(name)
        blocks = [b for stage in model.blocks for b in stage] if isinstance(model, GFNetPyramid) else list(model.blocks)
        last_drop = getattr(blocks[-1].drop_path, 'drop_prob', 0.0)
        assert last_drop == pytest.approx(settings['drop_path_rate'])
        if 'layer_scale_init' in settings:
            assert torch.all(blocks[0].gamma == settings['layer_scale_init'])


@pytest.mark.parametrize('size', [(384, 384), (512, 683)])
def test_pyramid_any_input_size_resizes_pos_embed_and_filters(size):
    model = create_gfnet('h-ti', embed_dims=(16, 32, 64, 128), depths=(1, 1, 1, 1)).eval()
    stages = model.forward_stages(torch.randn(1, 3, *size))
    assert [tuple(s.shape[1:3]) for s in stages] == [(size[0] // r, size[1] // r) for r in (4, 8, 16, 32)]


def test_eval_outputs_identical_after_save_and_load(tmp_path):
    for name in ('gfnet_ti', 'gfnet_h_ti'):
        model = timm.create_model(name, num_classes=10).eval()
        x = torch.randn(1, 3, 224, 224)
        with torch.no_grad():
            expected = model(x)
        torch.save({'model': model.state_dict()}, tmp_path / 'ckpt.pth')
        reloaded = timm.create_model(name, num_classes=10).eval()
        report = load_checkpoint(reloaded, str(tmp_path / 'ckpt.pth'), strict=True)
        assert not report.resized and not report.missing
        with torch.no_grad():
            assert torch.equal(reloaded(x), expected)
        # Plain strict loading works too: the keys are the model's own.
        reloaded.load_state_dict(torch.load(tmp_path / 'ckpt.pth', weights_only=True)['model'], strict=True)


@pytest.mark.parametrize('name, widths', [('gfnet_ti', dict(embed_dim=64, depth=2)),
                                          ('gfnet_h_ti', dict(embed_dims=(16, 32, 48, 64), depths=(1, 1, 1, 1)))])
def test_checkpoint_at_224_loads_into_384_model(tmp_path, name, widths):
    """Against a 384 model given weights resized by the NumPy oracle of test_resize_oracles.py
    (bicubic, align_corners=True for filters and False for the position embedding). Small widths:
    the resizing does not depend on them."""
    source = timm.create_model(name, **widths).state_dict()
    torch.save({'model': source}, tmp_path / 'ckpt.pth')
    model = timm.create_model(name, img_size=384, pretrained=True, **widths,
                              pretrained_cfg_overlay=dict(file=str(tmp_path / 'ckpt.pth'))).eval()
    reference = timm.create_model(name, img_size=384, **widths).eval()
    target = reference.state_dict()
    grid_224 = (224 // (384 // reference.pos_grid[0]),) * 2
    oracle = {key: oracle_filter(value, target[key].shape[:2]) if key.endswith('complex_weight') else value
              for key, value in source.items()}
    oracle['pos_embed'] = oracle_pos_embed(source['pos_embed'], reference.pos_grid, grid_224)
    assert sum(key.endswith('complex_weight') for key in oracle) >= 2
    reference.load_state_dict(oracle, strict=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, oracle[key], rtol=0, atol=5e-5, msg=key)
    images = torch.randn(1, 3, 384, 384)
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(images), rtol=1e-4, atol=1e-4)


def test_timm_entry_points_and_pretrained_cfg():
    for name in MODELS:
        assert timm.is_model(name)
    model = timm.create_model('gfnet_h_ti', img_size=384, num_classes=10)
    assert model.head.out_features == 10 and model.pos_grid == (96, 96)
    cfg = model.pretrained_cfg
    assert cfg['input_size'] == (3, 224, 224) and cfg['crop_pct'] == 0.9
    assert cfg['interpolation'] == 'bicubic' and cfg['mean'] == timm.data.IMAGENET_DEFAULT_MEAN


def test_pretrained_without_local_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match='checkpoints/gfnet-h-ti.pth'):
        timm.create_model('gfnet_h_ti', pretrained=True)


def test_unknown_arch_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown GFNet arch 'h-xl'.*h-ti.*gfnet_h_b"):
        arch_settings('h-xl')
    assert set(ARCH_SETTINGS) == {'ti', 'xs', 's', 'b', 'h-ti', 'h-s', 'h-b'}
    assert arch_settings('gfnet-h-ti') == arch_settings('gfnet_h_ti') == arch_settings('h-ti')


@pytest.mark.parametrize('shape, message', [
    ((1, 1, 224, 224), r'\(B, 3, H, W\)'),
    ((1, 3, 16, 224), 'smaller than the network\'s total stride 32'),
    ((3, 224, 224), r'\(B, 3, H, W\)'),
])
def test_bad_input_raises_value_error(shape, message):
    model = create_gfnet('h-ti', embed_dims=(8, 8, 8, 8), depths=(1, 1, 1, 1))
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_forward_under_bfloat16_autocast():
    model = create_gfnet('h-ti', embed_dims=(16, 32, 64, 128), depths=(1, 1, 1, 1))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = model(torch.randn(2, 3, 64, 96))
    logits.float().sum().backward()
    assert torch.isfinite(logits.float()).all()
