"""GFNetH as an mmdet backbone: one class in both registries, and training on batches of varied sizes.

Detection batches differ in size (keep-ratio resize, padding to a multiple of 32, multi-scale
training): every batch's token grids get the stored filters and position embedding resized to
them, in training as in inference, and the gradients reach the stored tensors through the resize.
The oracle recomputes each global filter with ``torch.fft`` and autograd from an explicit
``resize_filter`` of a leaf copy of the stored filter (and ``resize_pos_embed`` of a leaf copy of
the position embedding), independent of the model's custom autograd function.
"""
import subprocess
import sys
import textwrap

import pytest
import torch

from gfnet_seg import GFNetH, resize_filter, resize_pos_embed
from gfnet_seg.models.gfnet import Block

TINY = dict(embed_dims=(8, 16, 24, 32), depths=(1, 2, 1, 1), layer_scale_init=1e-3)
STORED = (64, 96)  # the size the filters are built for: no batch below has it


def tiny_backbone(seed=0):
    torch.manual_seed(seed)
    return GFNetH(arch=TINY, img_size=STORED, drop_path_rate=0.).train()


def loss_of(outs):
    """A loss that weighs every output element differently (a plain sum would hide mistakes)."""
    total = 0.
    for i, out in enumerate(outs):
        weights = torch.linspace(-1., 2., out.numel()).reshape(out.shape)
        total = total + (out * weights).sum() * (i + 1)
    return total


class OracleFilters:
    """Each block's filter and the position embedding computed from leaf copies of the stored tensors,
    with explicit resizes and torch.fft's own autograd."""

    def __init__(self, model):
        self.model = model
        self.filters = {}
        for name, module in model.named_modules():
            if isinstance(module, Block):
                leaf = module.filter.complex_weight.detach().clone().requires_grad_()
                self.filters[name] = leaf
                module.filter.forward = self._filter(leaf)
        self.pos_embed = model.pos_embed.detach().clone().requires_grad_()
        model._add_pos_embed_eager = self._add_pos_embed
        self.grids = []

    def _filter(self, leaf):
        def forward(x):
            height, width = x.shape[1], x.shape[2]
            weight = resize_filter(leaf, [height, width // 2 + 1])
            self.grids.append((height, width))
            spectrum = torch.fft.rfft2(x.float(), dim=(1, 2), norm='ortho') * torch.view_as_complex(weight.contiguous())
            return torch.fft.irfft2(spectrum, s=(height, width), dim=(1, 2), norm='ortho')
        return forward

    def _add_pos_embed(self, x):
        grid = (x.shape[1], x.shape[2])
        return x + resize_pos_embed(self.pos_embed, grid, self.model.pos_grid).reshape(1, *grid, -1)


def stored_filters(model):
    return {name: m.filter.complex_weight for name, m in model.named_modules() if isinstance(m, Block)}


@pytest.mark.parametrize('with_cp', [False, True])
def test_training_batches_of_different_sizes_resize_the_stored_filters_with_gradients(with_cp):
    """Two batches of different sizes and batch sizes in train mode: the stored filters' and the
    position embedding's gradients (accumulated over both) equal those through explicit resizes."""
    model = tiny_backbone()
    model.set_grad_checkpointing(with_cp)
    oracle_model = tiny_backbone()
    oracle = OracleFilters(oracle_model)
    batches = [torch.randn(2, 3, 96, 160), torch.randn(1, 3, 128, 64)]  # padded as mmdet pads: multiples of 32
    for step, x in enumerate(batches):
        outs = model(x)
        assert [o.shape[-2:] for o in outs] == [(x.shape[2] // s, x.shape[3] // s) for s in (4, 8, 16, 32)]
        loss_of(outs).backward()
        loss_of(oracle_model(x)).backward()
        for name, weight in stored_filters(model).items():
            assert weight.shape[:2] == (STORED[0] // 4 // 2 ** int(name.split('.')[1]),
                                        STORED[1] // 4 // 2 ** int(name.split('.')[1]) // 2 + 1)
            assert weight.grad is not None and weight.grad.abs().sum() > 0, name
            torch.testing.assert_close(weight.grad, oracle.filters[name].grad, rtol=1e-4, atol=1e-6,
                                       msg=lambda m: f'{name} after batch {step}: {m}')
        torch.testing.assert_close(model.pos_embed.grad, oracle.pos_embed.grad, rtol=1e-4, atol=1e-6)
    # the oracle saw each batch's grids, none of them the stored one
    stage0 = {grid for grid in oracle.grids if grid[0] * 4 in (96, 128)}
    assert stage0 == {(24, 40), (32, 16)}


def test_training_step_updates_the_stored_filters_through_the_resize():
    model = tiny_backbone()
    before = {name: w.detach().clone() for name, w in stored_filters(model).items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=1.)
    for x in (torch.randn(2, 3, 96, 160), torch.randn(1, 3, 160, 96)):
        optimizer.zero_grad()
        loss_of(model(x)).backward()
        optimizer.step()
    for name, weight in stored_filters(model).items():
        assert weight.shape == before[name].shape  # the stored size does not follow the batches
        assert not torch.equal(weight, before[name]), name


def test_sizes_not_a_multiple_of_32_are_floored_per_stage_and_train():
    """As the model does at any size: each stride-2 step floors (the last rows and columns that do
    not fill a patch are left out), the filters are resized to the floored grids, and training works.
    mmdet's DetDataPreprocessor pads to multiples of 32, so detection never feeds such sizes."""
    model = tiny_backbone()
    x = torch.randn(2, 3, 100, 150)
    outs = model(x)
    assert [tuple(o.shape[-2:]) for o in outs] == [(25, 37), (12, 18), (6, 9), (3, 4)]
    loss_of(outs).backward()
    assert all(torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0 for w in stored_filters(model).values())
    with pytest.raises(ValueError, match='smaller than the network'):
        model(torch.randn(1, 3, 31, 64))


def test_registered_in_mmdet_and_built_in_mmdet_scope():
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS as SEG_MODELS

    assert DET_MODELS.get('GFNetH') is GFNetH and SEG_MODELS.get('GFNetH') is GFNetH
    with DefaultScope.overwrite_default_scope('mmdet'):
        backbone = DET_MODELS.build(dict(type='GFNetH', arch=TINY, img_size=(800, 1344), out_indices=(1, 2, 3)))
    assert isinstance(backbone, GFNetH) and backbone.out_indices == (1, 2, 3)
    assert backbone.blocks[0][0].filter.complex_weight.shape[:2] == (200, 169)


@pytest.mark.parametrize('blocker', ['none_in_sys_modules', 'meta_path'])
def test_segmentation_path_imports_without_mmdet(blocker, python):
    block = {
        'none_in_sys_modules': "sys.modules['mmdet'] = None",
        'meta_path': textwrap.dedent('''\
            class Blocker:
                def find_spec(self, name, path=None, target=None):
                    if name == 'mmdet' or name.startswith('mmdet.'):
                        raise ModuleNotFoundError(f"No module named '{name}'", name=name)
            sys.meta_path.insert(0, Blocker())'''),
    }[blocker]
    script = block + textwrap.dedent('''
        import gfnet_seg
        from mmseg.registry import MODELS
        assert MODELS.get('GFNetH') is gfnet_seg.GFNetH
        MODELS.build(dict(type='GFNetH', arch=dict(embed_dims=(8, 8, 8, 8), depths=(1, 1, 1, 1),
                                                   layer_scale_init=1e-3), img_size=64))
        assert sys.modules.get('mmdet') is None
        print('ok')''')
    result = subprocess.run([python, '-c', 'import sys\n' + script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith('ok'), result.stderr[-3000:]
