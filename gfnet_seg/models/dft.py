"""The global filter's 2-D real FFTs for export: as products with real DFT matrices (no DFT operator,
no complex dtype), and as ONNX DFT nodes for the TorchScript-based exporter.

Runtimes without a DFT operator (TensorRT, many NPU compilers) and exporters without complex dtypes
can still run GFNet with these: ``rfft2``/``irfft2`` over dims (1, 2) of a ``(B, H, W, C)`` token map,
``norm='ortho'``, each become two matrix products in real arithmetic.

Order, for speed: the real transform along W first, one ``(2F, W)`` matrix (``F = W // 2 + 1``) applied
to every ``(W, C)`` row of the map as one batched GEMM, which halves the data; then the complex
transform along H on the half spectrum, one ``(2H, H)`` matrix on the ``(H, 2F*C)`` slab of each image
(a 1x1 convolution with H input channels: it contracts dim 1 of the 4-D map without a reshape that
splits ``2F*C``, which symbolic shapes cannot prove valid). The inverse mirrors it. See
``matmul_filter_macs`` for the cost.

The matrices are built from the input's sizes with ``torch.arange``, an outer product and ``cos``/``sin``,
so a graph traced with dynamic H and W (``torch.export``, ONNX) builds them from the symbolic sizes
instead of baking constants. ``k * n`` is reduced modulo the size in integers before it becomes an
angle, which keeps the angles exact on large grids.

The TorchScript-based exporter (``torch.onnx.export(dynamo=False)``, as timm's ``onnx_export.py``
runs it) has no symbolic for ``aten::fft_rfft2``/``fft_irfft2`` and no complex dtype, so while it
traces, the whole filter is one ``OnnxDFTFilter`` node whose ``symbolic`` writes the same DFT nodes
(DFT-17 or DFT-20) as the dynamo exporter: a onesided DFT along W, a complex one along H, the complex
product in real arithmetic, and the two inverses back, the last one an IRFFT whose length is the
input's width, read with ``Shape`` (dynamic H and W stay dynamic).
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _size_tensor(size, device, dtype=torch.int64) -> Tensor:
    """A 0-d tensor holding ``size`` (an int, or a symbolic size while tracing)."""
    return torch.full((), size, dtype=dtype, device=device)


def _angles(rows, cols, size, device) -> Tensor:
    """``(rows, cols)`` float32: ``2*pi * ((k * n) mod size) / size`` for row k and column n."""
    k = torch.arange(rows, device=device)
    n = torch.arange(cols, device=device)
    period = _size_tensor(size, device)
    phase = torch.remainder(k[:, None] * n[None, :], period)
    return phase.to(torch.float32) * (2 * math.pi / period.to(torch.float32))


def _ortho(size, device) -> Tensor:
    return torch.rsqrt(_size_tensor(size, device, torch.float32))


def _rdft_matrix(width, device) -> Tensor:
    """``(2F, W)``: real and imaginary rows of the ortho DFT along W, frequencies 0..W//2."""
    angles = _angles(width // 2 + 1, width, width, device)
    return torch.cat([torch.cos(angles), -torch.sin(angles)], dim=0) * _ortho(width, device)


def _irdft_matrix(width, device) -> Tensor:
    """``(W, 2F)``: the inverse of ``_rdft_matrix`` on a Hermitian half spectrum.

    Column k of the half spectrum stands for k and W - k of the full one, so it counts twice,
    except the DC column and, for even W, the Nyquist column, which count once and whose imaginary
    part is ignored (as ``torch.fft.irfft`` does).
    """
    k = torch.arange(width // 2 + 1, device=device)
    self_conjugate = (k == 0) | (2 * k == _size_tensor(width, device))
    cos_weight = torch.where(self_conjugate, 1.0, 2.0)
    sin_weight = torch.where(self_conjugate, 0.0, -2.0)
    angles = _angles(width, width // 2 + 1, width, device)
    matrix = torch.cat([torch.cos(angles) * cos_weight, torch.sin(angles) * sin_weight], dim=1)
    return matrix * _ortho(width, device)


def _dft_h(x: Tensor, height) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cosine and sine transforms along dim 1 of ``x`` ``(B, H, 2F, C)`` holding [real; imag] along
    dim 2: returns ``(cos @ real, cos @ imag, sin @ real, sin @ imag)``, each ``(B, H, F, C)``."""
    angles = _angles(height, height, height, x.device)
    matrix = torch.cat([torch.cos(angles), torch.sin(angles)], dim=0) * _ortho(height, x.device)
    products = F.conv2d(x, matrix[:, :, None, None])  # (B, 2H, 2F, C)
    (cos_real, cos_imag), (sin_real, sin_imag) = (
        part.unbind(2) for part in products.unflatten(2, (2, -1)).unflatten(1, (2, -1)).unbind(1))
    return cos_real, cos_imag, sin_real, sin_imag


def rfft2_matmul(x: Tensor) -> Tuple[Tensor, Tensor]:
    """``torch.fft.rfft2(x, dim=(1, 2), norm='ortho')`` of a real ``(B, H, W, C)`` map, as
    ``(real, imag)``, each ``(B, H, W // 2 + 1, C)``."""
    batch, height, width, channels = x.shape
    rows = x.reshape(batch * height, width, channels)
    half = torch.matmul(_rdft_matrix(width, x.device), rows).unflatten(0, (batch, height))
    cos_real, cos_imag, sin_real, sin_imag = _dft_h(half, height)
    return cos_real + sin_imag, cos_imag - sin_real


def irfft2_matmul(real: Tensor, imag: Tensor, size: Tuple[int, int]) -> Tensor:
    """``torch.fft.irfft2(complex(real, imag), s=size, dim=(1, 2), norm='ortho')``: ``(B, H, W, C)``
    from a half spectrum ``(B, H, W // 2 + 1, C)``."""
    height, width = size
    batch, _, half_width, channels = real.shape
    cos_real, cos_imag, sin_real, sin_imag = _dft_h(torch.cat([real, imag], dim=2), height)
    half = torch.cat([cos_real - sin_imag, cos_imag + sin_real], dim=2)  # inverse along H
    rows = half.reshape(batch * height, 2 * half_width, channels)
    return torch.matmul(_irdft_matrix(width, real.device), rows).unflatten(0, (batch, height))


def global_filter_matmul(x: Tensor, weight: Tensor) -> Tensor:
    """``irfft2(rfft2(x) * complex(weight))`` (ortho, dims (1, 2)) in real arithmetic.

    ``x``: tokens ``(B, H, W, C)``; ``weight``: the filter for this grid, ``(H, W // 2 + 1, C, 2)``
    holding (real, imag). Computed in float32, returned in ``x``'s dtype.
    """
    height, width = x.shape[1:3]
    real, imag = rfft2_matmul(x.float())
    weight_real, weight_imag = weight.float().unbind(-1)
    filtered_real = real * weight_real - imag * weight_imag
    filtered_imag = real * weight_imag + imag * weight_real
    return irfft2_matmul(filtered_real, filtered_imag, (height, width)).to(x.dtype)


def matmul_filter_macs(height: int, width: int, channels: int) -> int:
    """Multiply-adds of ``global_filter_matmul`` on an H x W x C map: each of the two transforms
    costs ``2F*W*C`` per row of H (along W) and ``2H*H*2F*C`` (along H); the filter product ``4*H*F*C``."""
    half = width // 2 + 1
    along_w = height * 2 * half * width * channels
    along_h = 2 * height * height * 2 * half * channels
    return 2 * (along_w + along_h) + 4 * height * half * channels


# DFT: opset 17 (axis an attribute); opset 20 (axis an input). IRFFT is DFT(inverse=1, onesided=1).
MIN_ONNX_DFT_OPSET = 17


def _int64(g, values):
    return g.op('Constant', value_t=torch.tensor(values, dtype=torch.int64))


def _dim_size(g, shape, dim: int):
    """``shape[dim]`` as a 0-d int64 value (a DFT length)."""
    return g.op('Squeeze', g.op('Slice', shape, _int64(g, [dim]), _int64(g, [dim + 1])), _int64(g, [0]))


def _last(g, x, index: int):
    """``x[..., index:index + 1]``: the real (0) or imaginary (1) part of an ONNX complex tensor."""
    return g.op('Slice', x, _int64(g, [index]), _int64(g, [index + 1]), _int64(g, [-1]))


def _onnx_dft(g, x, axis: int, length, inverse: bool = False, onesided: bool = False):
    if g.opset >= 20:
        return g.op('DFT', x, length, _int64(g, axis), inverse_i=int(inverse), onesided_i=int(onesided))
    return g.op('DFT', x, length, axis_i=axis, inverse_i=int(inverse), onesided_i=int(onesided))


class OnnxDFTFilter(torch.autograd.Function):
    """``irfft2(rfft2(x, ortho) * complex(weight), ortho)`` over dims (1, 2), seen by the TorchScript
    exporter as one node (a ``prim::PythonOp``) that ``symbolic`` writes as ONNX DFT nodes.

    ``x``: float32 tokens ``(B, H, W, C)``; ``weight``: the filter for this grid ``(H, W // 2 + 1, C, 2)``.
    ``forward`` is the plain formula (it runs once, while the exporter traces); export only, no backward.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:
        height, width = x.shape[1], x.shape[2]
        spectrum = torch.fft.rfft2(x, dim=(1, 2), norm='ortho') * torch.view_as_complex(weight.contiguous())
        return torch.fft.irfft2(spectrum, s=(height, width), dim=(1, 2), norm='ortho')

    @staticmethod
    def symbolic(g, x, weight):
        if g.opset < MIN_ONNX_DFT_OPSET:
            raise torch.onnx.errors.OnnxExporterError(
                f'the GFNet global filter needs the ONNX DFT operator, opset >= {MIN_ONNX_DFT_OPSET} '
                f'(exporting with opset {g.opset}); or export with use_fft("matmul"), which has no DFT')
        shape = g.op('Shape', x)
        height, width = _dim_size(g, shape, 1), _dim_size(g, shape, 2)
        # ONNX complex tensors are real ones with a last dim of 2 (real, imag); a real input has 1.
        spectrum = _onnx_dft(g, g.op('Unsqueeze', x, _int64(g, [-1])), 2, width, onesided=True)
        spectrum = _onnx_dft(g, spectrum, 1, height)  # (B, H, F, C, 2)
        # (a + ib)(c + id) = [a, b] * c + [-b, a] * d
        swapped = g.op('Concat', g.op('Neg', _last(g, spectrum, 1)), _last(g, spectrum, 0), axis_i=-1)
        product = g.op('Add', g.op('Mul', spectrum, _last(g, weight, 0)), g.op('Mul', swapped, _last(g, weight, 1)))
        product = _onnx_dft(g, product, 1, height, inverse=True)
        # IRFFT to the input's width (the imaginary parts of the DC and Nyquist columns are dropped, as
        # torch.fft.irfft does). No scaling: ONNX's inverse divides by H*W, ortho twice by sqrt(H*W).
        out = _onnx_dft(g, product, 2, width, inverse=True, onesided=True)
        return g.op('Squeeze', _last(g, out, 0), _int64(g, [-1]))


def global_filter_onnx_dft(x: Tensor, weight: Tensor) -> Tensor:
    """The global filter as one ``OnnxDFTFilter`` node (float32), for the TorchScript-based exporter."""
    return OnnxDFTFilter.apply(x.float(), weight.float()).to(x.dtype)
