"""GFNetH as an mmseg backbone: shapes at any input size, ImageNet checkpoints through init_cfg,
frozen stages."""
import pytest
import timm
import torch

from gfnet_seg import ARCH_SETTINGS, GFNetH, resize_filter, resize_pos_embed

TINY = dict(embed_dims=(16, 32, 48, 64), depths=(1, 1, 1, 1), layer_scale_init=1e-3)
STRIDES = (4, 8, 16, 32)


def expected_shapes(arch_dims, height, width):
    """(C, H, W) per stage: a stride-4 patch conv, then three 2x2 stride-2 convs (floor each time)."""
    shapes, h, w = [], height // 4, width // 4
    for dim in arch_dims:
        shapes.append((dim, h, w))
        h, w = h // 2, w // 2
    return shapes


@pytest.mark.parametrize('arch, hw', [
    (TINY, (512, 512)), (TINY, (512, 683)), (TINY, (1024, 512)), ('h-ti', (512, 683))])
def test_output_shapes_and_strides(arch, hw):
    model = GFNetH(arch=arch, img_size=512).eval()
    dims = TINY['embed_dims'] if isinstance(arch, dict) else ARCH_SETTINGS[arch]['embed_dims']
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *hw))
    assert [tuple(o.shape[1:]) for o in outs] == expected_shapes(dims, *hw)
    for out, stride in zip(outs, STRIDES):  # stride = input size / feature size, rounded down
        assert out.shape[-2:] == (hw[0] // stride, hw[1] // stride)


def test_out_indices_select_stages():
    model = GFNetH(arch=TINY, img_size=64, out_indices=(1, 3)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [32, 64]
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm3')


def test_odd_size_eval_inference_matches_uncached_forward():
    """Eval mode caches the filters resized to 500x370; the result must equal a fresh computation."""
    torch.manual_seed(0)
    model = GFNetH(arch=TINY, img_size=512).eval()
    x = torch.randn(1, 3, 500, 370)
    with torch.no_grad():
        first, second = model(x), model(x)
    reference = model(x)  # autograd on: no cache
    assert [tuple(o.shape[1:]) for o in first] == expected_shapes(TINY['embed_dims'], 500, 370)
    for a, b, ref in zip(first, second, reference):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(a, ref.detach())


def test_init_cfg_loads_timm_imagenet_checkpoint_resizing_to_512(tmp_path):
    source = timm.create_model('gfnet_h_ti')  # built for 224x224
    checkpoint = {k: v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / 'gfnet-h-ti.pth'
    torch.save({'model': checkpoint}, path)

    model = GFNetH('h-ti', img_size=512, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    loaded = model.state_dict()

    classifier = [k for k in checkpoint if k.startswith(('head.', 'norm.'))]
    assert classifier  # the classification head and its final norm exist in the file ...
    assert not any(k in loaded for k in classifier)  # ... and are not part of the backbone
    backbone_keys = [k for k in checkpoint if k not in classifier]
    assert set(backbone_keys) <= set(loaded)
    resized = 0
    for key in backbone_keys:
        if key.endswith('filter.complex_weight'):
            stage = int(key.split('.')[1])
            grid = 512 // STRIDES[stage]
            assert loaded[key].shape[:2] == (grid, grid // 2 + 1)
            expected = resize_filter(checkpoint[key], (grid, grid // 2 + 1))
            resized += 1
        elif key == 'pos_embed':
            assert checkpoint[key].shape[1] == 56 * 56
            expected = resize_pos_embed(checkpoint[key], (128, 128), (56, 56))
            resized += 1
        else:
            expected = checkpoint[key]
        torch.testing.assert_close(loaded[key], expected, rtol=0, atol=0, msg=key)
    assert resized == sum(ARCH_SETTINGS['h-ti']['depths']) + 1


def test_init_cfg_checkpoint_without_matching_keys_raises(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'model': {'encoder.layer.weight': torch.zeros(4, 4)}}, path)
    model = GFNetH(TINY, img_size=64, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match='no weight'):
        model.init_weights()


def test_init_cfg_missing_file_names_it(tmp_path):
    path = tmp_path / 'missing.pth'
    model = GFNetH(TINY, img_size=64, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        model.init_weights()


def test_frozen_stages_do_not_train():
    torch.manual_seed(0)
    model = GFNetH(TINY, img_size=64, frozen_stages=1, drop_path_rate=0.)
    model.train()
    frozen_prefixes = ('pos_embed', 'patch_embed.0.', 'patch_embed.1.', 'blocks.0.', 'blocks.1.',
                       'norm0.', 'norm1.')
    for name, module in model.named_modules():
        if name and (name + '.').startswith(frozen_prefixes):
            assert not module.training, f'{name} should stay in eval mode'
    before = {k: v.clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = sum(o.square().mean() for o in model(torch.randn(2, 3, 64, 64)))
    loss.backward()
    optimizer.step()
    for name, param in model.named_parameters():
        is_frozen = name.startswith(frozen_prefixes)
        assert param.requires_grad != is_frozen, name
        # Frozen: no gradient, weight unchanged. Trained: a gradient reached it (the step itself
        # can be below float32 resolution behind a 1e-3 layer scale, so it is not compared).
        assert (param.grad is None) == is_frozen, name
        if is_frozen:
            assert torch.equal(param, before[name]), name
    assert not torch.equal(model.patch_embed[2].proj.weight, before['patch_embed.2.proj.weight'])


def test_with_cp_gives_the_gradients_of_the_plain_backbone():
    """Gradient checkpointing per block (mmseg's ``with_cp``): same outputs and gradients, drop path on."""
    torch.manual_seed(0)
    plain = GFNetH(arch=TINY, img_size=64, drop_path_rate=0.2).train()
    checkpointed = GFNetH(arch=TINY, img_size=64, drop_path_rate=0.2, with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 96)
    results = []
    for model in (plain, checkpointed):
        torch.manual_seed(1)
        outs = model(x)
        sum((o * torch.arange(o.numel()).reshape(o.shape).sin()).sum() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()}))
    (outs, grads), (outs_cp, grads_cp) = results
    for out, out_cp in zip(outs, outs_cp):
        torch.testing.assert_close(out_cp, out)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_cp[name], grad, rtol=1e-5, atol=1e-7, msg=name)
