"""The global filter layer of GFNet, every way of computing it, and the two resizing functions.

A global filter mixes tokens with an element-wise product in the 2-D frequency domain, which is
a circular convolution over the whole token grid at O(HW log HW). The learnable filter is stored
as in the official code, ``complex_weight`` of shape ``(h, w // 2 + 1, C, 2)`` (real, imag), sized
for the grid seen in training; other grids get a resized copy (bicubic), made on the fly and, in
eager inference, cached per size.

The ways of computing the filter, each tested against the same oracle (circular convolution):

* ``spectral_filter``: the plain formula, used while torch.jit/fx/dynamo/export trace the model
  (one functional graph, no caches, no Python branches on sizes).
* ``GlobalFilterFunction``: eager training. A custom autograd function whose backward is itself a
  global filter with the conjugate filter; it keeps only the spectrum of its input.
* eager inference: the spectrum is multiplied in place, the resized filter is cached per size.
* ``use_fft('matmul')``: the DFT as products with real cos/sin matrices (``dft.py``), for export
  to runtimes without DFT operators.
* the TorchScript-based ONNX exporter (``torch.onnx.export(dynamo=False)``, timm's ``onnx_export.py``):
  it knows no ``fft_rfft2`` and no complex dtype, so the filter is one node that it writes as ONNX
  DFT nodes (``dft.OnnxDFTFilter``); the filter resize stays in the traced graph. The dynamo exporter
  and plain ``torch.jit.trace`` see ``spectral_filter``'s formula as before.

Eager execution on CPU transforms with a real FFT along W then a complex FFT along H (the inverse
mirrored), which MKL runs faster than ``rfft2`` on these NHWC maps; CUDA (cuFFT's 2-D plans) and
tracers take ``torch.fft.rfft2``/``irfft2`` over dims (1, 2).
"""
import contextlib
from collections import OrderedDict
from typing import Callable, Hashable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import register_notrace_function

# Distinct input sizes remembered per module in eval mode (whole-image inference on a data set
# of varied image sizes must not keep one resized filter per image forever).
EVAL_CACHE_SIZES = 8
# The attribute that holds a module's cache (TorchScript is told to ignore it).
SIZE_CACHE = '_size_cache'

FFT_IMPLEMENTATIONS = ('native', 'matmul')
_fft_implementation = 'native'


@contextlib.contextmanager
def use_fft(name: str):
    """Compute every global filter with ``name`` ('native': torch.fft, 'matmul': real DFT matrices)
    inside the ``with`` block, e.g. while exporting to a runtime without DFT operators."""
    global _fft_implementation
    if name not in FFT_IMPLEMENTATIONS:
        raise ValueError(f"unknown FFT implementation '{name}'; choose one of {FFT_IMPLEMENTATIONS}")
    previous, _fft_implementation = _fft_implementation, name
    try:
        yield
    finally:
        _fft_implementation = previous


@torch.jit.unused
def fft_implementation() -> str:
    """The name that ``use_fft`` set: 'native' unless inside its block."""
    return _fft_implementation


@torch.jit.unused
def is_tracing() -> bool:
    """True while torch.fx, dynamo (torch.compile, torch.export) or torch.jit.trace record the model:
    then the model is one functional graph, without caches or branches on input sizes."""
    return (torch.fx._symbolic_trace.is_fx_symbolic_tracing() or torch.compiler.is_compiling()
            or torch.jit.is_tracing())


@torch.jit.unused
def in_torchscript_onnx_export() -> bool:
    """True while ``torch.onnx.export(dynamo=False)`` traces the model (not for the dynamo exporter,
    which does not trace with torch.jit, nor for a plain ``torch.jit.trace``)."""
    return torch.jit.is_tracing() and torch.onnx.is_in_onnx_export()


def filter_size(grid_hw: Sequence[int]) -> Tuple[int, int]:
    """Shape (h, w) of the half-spectrum filter for an H x W token grid: rfft2 keeps W // 2 + 1."""
    return int(grid_hw[0]), int(grid_hw[1]) // 2 + 1


def resize_filter(complex_weight: torch.Tensor, size: List[int]) -> torch.Tensor:
    """Resize a filter ``(h, w, C, 2)`` to ``(size[0], size[1], C, 2)``.

    Bicubic interpolation on the real and imaginary planes with ``align_corners=True``, as the
    official GFNet fine-tuning code does when it moves a 224 filter to 384.
    """
    if complex_weight.dim() != 4 or complex_weight.shape[3] != 2:
        raise ValueError('expected a filter of shape (h, w, C, 2), got ' + str(complex_weight.shape))
    h, w, channels = complex_weight.shape[0], complex_weight.shape[1], complex_weight.shape[2]
    planes = complex_weight.reshape(1, h, w, channels * 2).permute(0, 3, 1, 2).float()
    planes = F.interpolate(planes, size=[size[0], size[1]], mode='bicubic', align_corners=True)
    return planes.permute(0, 2, 3, 1).reshape(size[0], size[1], channels, 2).to(complex_weight.dtype)


def resize_pos_embed(pos_embed: torch.Tensor, new_grid: Tuple[int, int],
                     old_grid: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """Resize a position embedding ``(1, H*W, C)`` from ``old_grid`` to ``new_grid`` (bicubic).

    ``old_grid`` defaults to a square grid. ``align_corners=False`` as in the official code.
    """
    num_tokens, channels = pos_embed.shape[1], pos_embed.shape[2]
    if old_grid is None:
        side = int(round(num_tokens ** 0.5))
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != num_tokens:
        raise ValueError('position embedding has ' + str(num_tokens) + ' tokens, not a '
                         + str(old_grid[0]) + 'x' + str(old_grid[1]) + ' grid')
    grid = pos_embed.reshape(1, old_grid[0], old_grid[1], channels).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=[new_grid[0], new_grid[1]], mode='bicubic', align_corners=False)
    return grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)


def cached_for_size(module: nn.Module, param: torch.Tensor, key: Hashable,
                    compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``compute()``, cached per ``key`` on ``module`` in eager inference (eval mode, no autograd).

    An entry is reused only while ``param`` is the same tensor at the same version, so a weight
    update, ``load_state_dict`` or a move to another device recomputes it. Tracers get
    ``compute()`` itself: a graph caches nothing, and dynamo would guard on the cache.
    """
    if module.training or torch.is_grad_enabled() or is_tracing():
        return compute()
    cache = module.__dict__.setdefault(SIZE_CACHE, OrderedDict())
    stamp = (param._version, param.data_ptr(), param.device, param.dtype)
    entry = cache.get(key)
    if entry is None or entry[0] != stamp:
        entry = cache[key] = (stamp, compute())
        while len(cache) > EVAL_CACHE_SIZES:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return entry[1]


def fitted_filter(complex_weight: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``complex_weight`` for an H x W grid, resized when it was built for another one. Tracers
    always resize (an identity at the same size) so that the graph holds for every input size."""
    size = [height, width // 2 + 1]  # filter_size, in a form TorchScript compiles
    if (not torch.jit.is_scripting() and is_tracing()) or complex_weight.shape[0] != size[0] \
            or complex_weight.shape[1] != size[1]:
        return resize_filter(complex_weight, size)
    return complex_weight


def forward_transform(x: torch.Tensor) -> torch.Tensor:
    """``rfft2`` over dims (1, 2) of tokens ``(B, H, W, C)``, norm 'ortho': ``(B, H, W // 2 + 1, C)``."""
    if x.is_cuda:
        return torch.fft.rfft2(x, dim=(1, 2), norm='ortho')
    return torch.fft.fft(torch.fft.rfft(x, dim=2, norm='ortho'), dim=1, norm='ortho')


def inverse_transform(spectrum: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``irfft2`` over dims (1, 2) back to contiguous tokens ``(B, H, W, C)`` (torch's transforms
    along inner dims return channels-first memory; the LayerNorm and MLP after want it channels-last)."""
    if spectrum.is_cuda:
        return torch.fft.irfft2(spectrum, s=(height, width), dim=(1, 2), norm='ortho').contiguous()
    spatial = torch.fft.irfft(torch.fft.ifft(spectrum, dim=1, norm='ortho'), n=width, dim=2, norm='ortho')
    return spatial.contiguous()


def in_spectrum_layout(weight: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
    """The filter ``(H, W // 2 + 1, C)`` laid out in memory as one sample of ``spectrum`` is (a copy
    unless it already is): the FFTs leave the spectrum channel-major, and a product of two tensors
    in different memory orders gathers one of them, about 5x slower than streaming both."""
    if weight.stride() == spectrum.stride()[1:]:
        return weight
    return torch.empty_like(spectrum[0], dtype=weight.dtype).copy_(weight)


def conj_product_batch_sum(spectrum: torch.Tensor, grad_spectrum: torch.Tensor) -> torch.Tensor:
    """``sum_b grad_spectrum[b] * conj(spectrum[b])``, accumulated one sample at a time: no
    temporary of the whole batch (``linalg.vecdot`` over dim 0 makes one and then reduces it along
    its outermost dim, 1.5x slower at 128x65x64 and 7x at 256x129x64 on CPU)."""
    if spectrum.shape[0] == 0:
        return spectrum.new_zeros(spectrum.shape[1:])
    total = torch.mul(grad_spectrum[0], spectrum[0].conj())
    for sample in range(1, spectrum.shape[0]):
        total.addcmul_(grad_spectrum[sample], spectrum[sample].conj())
    return total


class GlobalFilterFunction(torch.autograd.Function):
    """``irfft2(rfft2(x) * weight)`` with a hand-written backward that saves only the spectrum of x.

    Tokens ``x`` are ``(B, H, W, C)``, ``weight`` the complex filter ``(H, W // 2 + 1, C)``.

    The filter is a real linear map (a circular convolution), so its adjoint is the global filter
    with the conjugate filter: ``grad_x = irfft2(rfft2(grad) * conj(weight))``. The gradient of the
    half-spectrum filter is ``sum_batch(rfft2(grad) * conj(rfft2(x)))`` with the columns that stand
    for two bins of the full spectrum (1 .. W - W//2 - 1) counted twice, as torch's own derivative
    of ``irfft2`` does. Autograd through torch.fft would keep the spectrum and the product too.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        spectrum = forward_transform(x)
        ctx.save_for_backward(spectrum, weight)  # the filter as given: its layout copy is remade, not kept
        ctx.grid = x.shape[1:3]
        return inverse_transform(spectrum * in_spectrum_layout(weight, spectrum), *ctx.grid)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        spectrum, weight = ctx.saved_tensors
        height, width = ctx.grid
        grad_spectrum = forward_transform(grad)
        grad_x = grad_weight = None
        if ctx.needs_input_grad[1]:
            grad_weight = conj_product_batch_sum(spectrum, grad_spectrum)
            doubled = width - (width // 2 + 1)
            if doubled > 0:
                grad_weight[:, 1:1 + doubled] *= 2
        if ctx.needs_input_grad[0]:
            # the layout copy resolves the conjugation too
            grad_x = inverse_transform(grad_spectrum.mul_(in_spectrum_layout(weight.conj(), grad_spectrum)),
                                       height, width)
        return grad_x, grad_weight


@torch.jit.unused
def _filter_with_matmuls(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    from .dft import global_filter_matmul  # deployment only
    return global_filter_matmul(x.float(), weight).to(x.dtype)


@torch.jit.unused
def _filter_with_onnx_dft(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    from .dft import global_filter_onnx_dft  # deployment only
    return global_filter_onnx_dft(x, weight)


@register_notrace_function
def spectral_filter(x: torch.Tensor, complex_weight: torch.Tensor) -> torch.Tensor:
    """The global filter as one function of tokens ``(B, H, W, C)`` and the stored filter
    ``(h, w, C, 2)``: resize the filter to the grid, transform, multiply, transform back.

    The FFT runs in float32 even under autocast (half-precision FFTs are limited to power-of-two
    sizes and lose accuracy): the input is cast, and autocast leaves FFTs and complex products in
    their inputs' dtype. The result has the input's dtype. torch.fx keeps this function as
    one node (timm's ``register_notrace_function`` and ``torch.fx.wrap``), as its control flow
    depends on sizes.
    """
    height, width = x.shape[1], x.shape[2]
    weight = fitted_filter(complex_weight, height, width).float()
    if not torch.jit.is_scripting():
        if fft_implementation() == 'matmul':
            return _filter_with_matmuls(x, weight)
        if in_torchscript_onnx_export():
            return _filter_with_onnx_dft(x, weight)
    spectrum = torch.fft.rfft2(x.float(), dim=(1, 2), norm='ortho') * torch.view_as_complex(weight)
    return torch.fft.irfft2(spectrum, s=(height, width), dim=(1, 2), norm='ortho').to(x.dtype)


torch.fx.wrap('spectral_filter')


class GlobalFilter(nn.Module):
    """rfft2 over the token grid, multiply by a learnable complex filter, irfft2 back (norm 'ortho').

    Takes and returns contiguous tokens ``(B, H, W, C)``; eager execution takes ``forward_transform``
    and ``inverse_transform``, tracers see ``spectral_filter``.
    """
    __jit_ignored_attributes__ = [SIZE_CACHE]

    def __init__(self, dim: int, h: int = 14, w: int = 8, device=None, dtype=None):
        super().__init__()
        self.complex_weight = nn.Parameter(
            torch.randn(h, w, dim, 2, device=device, dtype=dtype or torch.float32) * 0.02)

    def spectral_weight(self, grid_hw: Tuple[int, int], layout: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The complex filter for an H x W grid, ``(H, W // 2 + 1, C)``, laid out in memory as one sample
        of the spectrum ``layout`` when given (``in_spectrum_layout``); cached in eager inference."""
        def compute() -> torch.Tensor:
            weight = torch.view_as_complex(fitted_filter(self.complex_weight, *grid_hw).float().contiguous())
            return weight if layout is None else in_spectrum_layout(weight, layout)
        key = tuple(grid_hw) if layout is None else (tuple(grid_hw), layout.stride()[1:])
        return cached_for_size(self, self.complex_weight, key, compute)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return spectral_filter(x, self.complex_weight)
        return self._forward_eager(x)

    @torch.jit.unused
    def _forward_eager(self, x: torch.Tensor) -> torch.Tensor:
        if is_tracing() or fft_implementation() != 'native':
            return spectral_filter(x, self.complex_weight)
        height, width = x.shape[1], x.shape[2]
        if torch.is_grad_enabled():
            out = GlobalFilterFunction.apply(x.float(), self.spectral_weight((height, width)))
        else:  # nothing needs the spectrum again: multiply in place
            spectrum = forward_transform(x.float())
            out = inverse_transform(spectrum.mul_(self.spectral_weight((height, width), spectrum)), height, width)
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        h, w, dim, _ = self.complex_weight.shape
        return f'dim={dim}, filter=({h}, {w})'
