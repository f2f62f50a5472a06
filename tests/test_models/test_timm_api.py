"""timm's model API on the seven models, each convention checked against an independent oracle:
pooled features are the token mean of ``forward_features``, feature maps are the stage (or block)
outputs that forward hooks record, checkpointed gradients equal plain ones."""
import copy

import pytest
import timm
import torch

import gfnet_seg  # noqa: F401  (registers the models)
from gfnet_seg.models import load_checkpoint
from gfnet_seg.models.gfnet import MODEL_NAMES, GFNetFeatures

PYRAMID = [name for name in MODEL_NAMES if name.startswith('gfnet_h')]
ISOTROPIC = [name for name in MODEL_NAMES if name not in PYRAMID]
# Small widths keep the suite fast; everything else (layer scale, drop path, strides) is the arch's.
SMALL = {**{name: dict(embed_dims=(16, 24, 32, 40), depths=(1, 2, 1, 1)) for name in PYRAMID},
         **{name: dict(embed_dim=24, depth=4) for name in ISOTROPIC}}
IMAGES = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))


def create(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    return timm.create_model(name, **{**SMALL[name], **kwargs}).eval()


def block_outputs(model, x):
    """The (B, H, W, C) output of every top-level entry of ``model.blocks`` (a GFNet-H stage or an
    isotropic block), recorded by forward hooks: an oracle that does not go through the code under test."""
    seen = []
    handles = [block.register_forward_hook(lambda m, i, o: seen.append(o)) for block in model.blocks]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_published_cfg_and_feature_sizes(name):
    """At the published widths (built on the meta device, no memory): pool_size of the pretrained
    cfg is the unpooled map of forward_features at 224, in the declared NHWC format."""
    with torch.device('meta'):
        model = timm.create_model(name)
    x = torch.empty(1, 3, 224, 224, device='meta')
    features = model.forward_features(x)
    assert model.output_fmt == 'NHWC'
    assert tuple(features.shape[1:3]) == model.pretrained_cfg['pool_size'] == ((7, 7) if name in PYRAMID else (14, 14))
    assert features.shape[3] == model.num_features == model.head_hidden_size
    assert model.forward_head(features, pre_logits=True).shape == (1, model.head_hidden_size)


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_forward_head_and_classifier_resets(name):
    model = create(name)
    with torch.no_grad():
        features = model.forward_features(IMAGES)
        pooled = model.forward_head(features, pre_logits=True)
        torch.testing.assert_close(pooled, features.mean(dim=(1, 2)))
        torch.testing.assert_close(model(IMAGES), model.head(pooled))
        model.reset_classifier(0)
        torch.testing.assert_close(model(IMAGES), pooled)
        model.reset_classifier(0, '')
        torch.testing.assert_close(model(IMAGES), features)
        model.reset_classifier(7, 'avg')
        assert model(IMAGES).shape == (2, 7) and model.num_classes == 7
        unpooled = create(name, num_classes=0, global_pool='')
        unpooled.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith('head.')})
        torch.testing.assert_close(unpooled(IMAGES), features)
    with pytest.raises(ValueError, match="global_pool must be 'avg'"):
        model.reset_classifier(0, 'max')


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_features_only_equal_block_outputs(name):
    plain = create(name)
    taps = block_outputs(plain, IMAGES)
    indices = (0, 1, 2, 3) if name in PYRAMID else (1, 2, 3)
    expected = [taps[i].permute(0, 3, 1, 2) for i in indices]
    features = create(name, features_only=True)
    assert isinstance(features, GFNetFeatures)
    with torch.no_grad():
        outputs = features(IMAGES)
    assert len(outputs) == len(expected)
    for out, want, channels, reduction in zip(outputs, expected, features.feature_info.channels(),
                                              features.feature_info.reduction()):
        torch.testing.assert_close(out, want)
        assert out.shape[1] == channels and out.shape[2:] == (64 // reduction, 96 // reduction)
    picked = create(name, features_only=True, out_indices=(1, -1))
    with torch.no_grad():
        last = len(taps) - 1
        for out, i in zip(picked(IMAGES), (1, last)):
            torch.testing.assert_close(out, taps[i].permute(0, 3, 1, 2))


@pytest.mark.parametrize('name', ['gfnet_h_ti', 'gfnet_xs'])
def test_features_only_loads_whole_model_checkpoints(name, tmp_path):
    """A checkpoint of the whole classifier at 64x64 loads into a features_only model built for
    another size, through pretrained=True and through timm's checkpoint_path (mmseg's TIMMBackbone
    uses it): filters and position embedding resized, head dropped, as load_checkpoint does."""
    source = create(name, seed=1, img_size=64)
    path = str(tmp_path / 'ckpt.pth')
    torch.save({'model': source.state_dict()}, path)
    oracle = create(name, seed=2, img_size=96)
    report = load_checkpoint(oracle, path)
    assert 'pos_embed' in report.resized
    expected = [t.permute(0, 3, 1, 2) for t in block_outputs(oracle, IMAGES)]
    for kwargs in (dict(pretrained=True, pretrained_cfg_overlay=dict(file=path)), dict(checkpoint_path=path)):
        features = create(name, seed=3, img_size=96, features_only=True, out_indices=(-1,), **kwargs)
        with torch.no_grad():
            torch.testing.assert_close(features(IMAGES)[0], expected[-1])


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_forward_intermediates_and_pruning(name):
    model = create(name)
    taps = [t.permute(0, 3, 1, 2) for t in block_outputs(model, IMAGES)]
    last = len(taps) - 1
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(IMAGES)
        torch.testing.assert_close(final, model.forward_features(IMAGES))
        assert len(intermediates) == len(taps)
        for got, want in zip(intermediates, taps):
            torch.testing.assert_close(got, want)
        only = model.forward_intermediates(IMAGES, indices=[1], stop_early=True, intermediates_only=True,
                                           output_fmt='NHWC')
        torch.testing.assert_close(only[0], taps[1].permute(0, 2, 3, 1))
        normed = model.forward_intermediates(IMAGES, indices=1, norm=True, intermediates_only=True)[0]
        torch.testing.assert_close(normed, model.norm(taps[last].permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
        for i in range(last):
            pruned = copy.deepcopy(model)
            assert pruned.prune_intermediate_layers([i], prune_norm=True) == [i]
            torch.testing.assert_close(pruned.forward_features(IMAGES).permute(0, 3, 1, 2), taps[i])
            torch.testing.assert_close(pruned(IMAGES), taps[i].permute(0, 2, 3, 1))  # head pruned too
        kept = copy.deepcopy(model)
        kept.prune_intermediate_layers([last], prune_head=False)
        torch.testing.assert_close(kept(IMAGES), model(IMAGES))


@pytest.mark.parametrize('name', MODEL_NAMES)
def test_grad_checkpointing_gives_the_same_outputs_and_gradients(name):
    model = create(name, drop_path_rate=0.2).train()
    checkpointed = copy.deepcopy(model)
    checkpointed.set_grad_checkpointing(True)
    results = []
    for net in (model, checkpointed):
        torch.manual_seed(5)  # the same drop-path masks in both
        out = net(IMAGES)
        out.square().sum().backward()
        results.append((out, {n: p.grad for n, p in net.named_parameters()}))
    (out, grads), (out_cp, grads_cp) = results
    torch.testing.assert_close(out_cp, out)
    for key in grads:
        torch.testing.assert_close(grads_cp[key], grads[key], rtol=1e-5, atol=1e-6, msg=key)


def test_group_matcher_and_no_weight_decay_name_real_parameters():
    from timm.models._manipulate import group_parameters
    for name in ('gfnet_h_ti', 'gfnet_ti'):
        model = create(name)
        groups = group_parameters(model, model.group_matcher(coarse=False), reverse=True)
        assert len(set(groups.values())) > 2
        assert {n for n, _ in model.named_parameters()} >= set(model.no_weight_decay())
