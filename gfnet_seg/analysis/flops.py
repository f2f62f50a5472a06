"""Parameters and FLOPs (multiply-adds, as the model zoo counts them), FFTs included.

mmengine's ``FlopAnalyzer`` (a jit trace) has no handler for ``aten::fft_rfft2``/``fft_irfft2`` and
ignores element-wise products, so common counters leave the global filter out. We count a global
filter over an H x W x D map as the GFNet paper does, ``HWD * ceil(log2(HW)) + HWD``: half of the
first term for the forward FFT, half for the inverse one, and the element-wise product with the
filter (HWD) with the inverse FFT, which consumes it.
"""
import math
import os
from dataclasses import dataclass
from typing import Any, List, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

FFT_OPS = ('aten::fft_rfft2', 'aten::fft_irfft2')
FLOP_CONVENTION = (
    'FLOPs are multiply-adds. A global filter over an H x W x D token map counts '
    'HWD*ceil(log2(HW)) + HWD (the GFNet paper): the forward and inverse FFT half of the first term '
    'each, the product with the filter HWD; counters that skip aten::fft_rfft2/fft_irfft2 miss these.')


def _int_list(value) -> List[int]:
    """A traced int-list argument: a constant, or a ``prim::ListConstruct`` of constants."""
    constant = value.toIValue()
    if constant is not None:
        return list(constant)
    return [item.toIValue() for item in value.node().inputs()]


def _fft_size(shape: Sequence[int], dims: Sequence[int]) -> Tuple[int, int]:
    """(H*W, H*W*D) of a real map of ``shape`` transformed over ``dims``; D is everything else."""
    dims = [d % len(shape) for d in dims]
    grid = math.prod(shape[d] for d in dims)
    return grid, math.prod(shape)


def fft_pair_flops(grid: int, numel: int) -> int:
    """Multiply-adds of a forward plus an inverse 2-D FFT of ``numel`` real values on ``grid`` points."""
    return numel * math.ceil(math.log2(grid)) if grid > 1 else 0


def rfft2_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """``aten::fft_rfft2(input, s, dim, norm)``: half the FFT pair of the real input map."""
    grid, numel = _fft_size(get_shape(inputs[0]), _int_list(inputs[2]))
    return fft_pair_flops(grid, numel) // 2


def irfft2_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """``aten::fft_irfft2(input, s, dim, norm)``: the other half for the real output map, plus the
    product with the filter."""
    grid, numel = _fft_size(get_shape(outputs[0]), _int_list(inputs[2]))
    pair = fft_pair_flops(grid, numel)
    return pair - pair // 2 + numel


# Handlers for mmengine's FlopAnalyzer (also given to mmengine's own counter by gfnet_seg.compat).
FFT_HANDLES = {FFT_OPS[0]: rfft2_flop_jit, FFT_OPS[1]: irfft2_flop_jit}


def flop_analyzer(model: nn.Module, inputs) -> FlopAnalyzer:
    """mmengine's FlopAnalyzer with our FFT handlers and without its per-op warnings."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle(**FFT_HANDLES)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return analyzer


@dataclass
class Complexity:
    """Counts for one model or submodule at one input size."""
    name: str
    params: int
    flops: int
    fft_flops: int

    @property
    def fft_share(self) -> float:
        return self.fft_flops / self.flops if self.flops else 0.

    def __str__(self) -> str:
        return (f'{self.name:<10} params {self.params / 1e6:8.2f}M   FLOPs {self.flops / 1e9:8.2f}G   '
                f'FFT {self.fft_flops / 1e9:6.3f}G ({100 * self.fft_share:.1f}%)')


def count_complexity(model: nn.Module, shape: Sequence[int], parts: Sequence[str] = ()) -> List[Complexity]:
    """Params and FLOPs of ``model`` on one ``(1, 3, H, W)`` input, and of its submodules ``parts``."""
    model.eval()
    device = next(model.parameters()).device
    inputs = (torch.zeros(1, 3, *shape, device=device),)
    with torch.no_grad():
        analyzer = flop_analyzer(model, inputs)
        by_module = analyzer.by_module()
        by_module_op = analyzer.by_module_and_operator()
    results = []
    for name in ('', *parts):
        module = model.get_submodule(name)
        fft = sum(by_module_op[name][op.split('::')[-1]] for op in FFT_OPS)
        results.append(Complexity(name or 'model', sum(p.numel() for p in module.parameters()),
                                  by_module[name], fft))
    return results


def build_model(config_or_arch: str) -> Tuple[nn.Module, Tuple[str, ...]]:
    """A model to count and the submodules worth reporting: an mmseg config file (built without
    its pretrained checkpoint) gives a segmentor and its backbone, anything else a timm model."""
    if config_or_arch.endswith('.py') or os.path.isfile(config_or_arch):
        from mmengine.config import Config
        from mmseg.registry import MODELS

        import gfnet_seg  # noqa: F401  (registers GFNetH, installs the mmcv-lite layer)
        cfg = Config.fromfile(config_or_arch)
        cfg.model.backbone.init_cfg = None  # no checkpoint offline; weights do not change counts
        cfg.model.pop('pretrained', None)
        return MODELS.build(cfg.model), ('backbone',)
    import timm

    import gfnet_seg.models  # noqa: F401  (registers the GFNet timm entry points)
    return timm.create_model(config_or_arch, pretrained=False), ()
