"""The FFT-free global filter (gfnet_seg/models/dft.py) against torch.fft, the oracle."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gfnet_seg.models.dft import global_filter_matmul, irfft2_matmul, matmul_filter_macs, rfft2_matmul

# Odd and even, square and not, degenerate, and the four stage grids of GFNet-H at 512x683.
GRIDS = [(7, 7), (8, 8), (9, 6), (6, 9), (1, 1), (2, 3), (5, 2),
         (128, 170), (64, 85), (32, 42), (16, 21)]


def _random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('grid', GRIDS, ids=lambda g: f'{g[0]}x{g[1]}')
def test_matches_torch_fft(grid):
    height, width = grid
    x = _random(2, height, width, 3)
    real, imag = rfft2_matmul(x)
    spectrum = torch.fft.rfft2(x, dim=(1, 2), norm='ortho')
    assert real.shape == imag.shape == spectrum.shape
    torch.testing.assert_close(real, spectrum.real, atol=1e-5, rtol=0)
    torch.testing.assert_close(imag, spectrum.imag, atol=1e-5, rtol=0)
    # A half spectrum that is not Hermitian (imaginary DC and Nyquist columns): irfft2 ignores
    # what does not belong to a real signal, and so must the matrices.
    arbitrary = torch.complex(_random(*spectrum.shape, seed=1), _random(*spectrum.shape, seed=2))
    torch.testing.assert_close(irfft2_matmul(arbitrary.real, arbitrary.imag, grid),
                               torch.fft.irfft2(arbitrary, s=grid, dim=(1, 2), norm='ortho'), atol=1e-5, rtol=0)
    weight = _random(height, width // 2 + 1, 3, 2, seed=3)
    expected = torch.fft.irfft2(spectrum * torch.view_as_complex(weight), s=grid, dim=(1, 2), norm='ortho')
    torch.testing.assert_close(global_filter_matmul(x, weight), expected, atol=1e-5, rtol=0)


def test_large_grid_stays_accurate():
    """k * n is reduced modulo the size before it becomes an angle: no drift on a long axis."""
    x = _random(1, 3, 1500, 2)
    weight = _random(3, 751, 2, 2, seed=1)
    expected = torch.fft.irfft2(torch.fft.rfft2(x, dim=(1, 2), norm='ortho') * torch.view_as_complex(weight),
                                s=(3, 1500), dim=(1, 2), norm='ortho')
    torch.testing.assert_close(global_filter_matmul(x, weight), expected, atol=1e-4, rtol=0)


def test_exported_with_symbolic_sizes():
    """Traced once with dynamic H and W, the graph builds its matrices for any other grid."""
    class Filter(torch.nn.Module):
        def forward(self, x, weight):
            return global_filter_matmul(x, weight)

    dims = {1: torch.export.Dim('h', min=2), 2: torch.export.Dim('w', min=2)}
    weight_dims = {0: dims[1], 1: torch.export.Dim('f', min=2)}
    program = torch.export.export(Filter(), (_random(1, 6, 8, 4), _random(6, 5, 4, 2)),
                                  dynamic_shapes=(dims, weight_dims), prefer_deferred_runtime_asserts_over_guards=True)
    x, weight = _random(1, 9, 7, 4, seed=1), _random(9, 4, 4, 2, seed=2)
    expected = torch.fft.irfft2(torch.fft.rfft2(x, dim=(1, 2), norm='ortho') * torch.view_as_complex(weight),
                                s=(9, 7), dim=(1, 2), norm='ortho')
    torch.testing.assert_close(program.module()(x, weight), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize('grid', [(16, 16), (9, 14)])
def test_cost_formula_counts_the_products(grid):
    """``matmul_filter_macs`` against torch's FLOP counter (2 FLOPs per multiply-add of the matrix
    products; the element-wise filter product, 4 H F C, is not counted by it)."""
    height, width = grid
    channels = 8
    x, weight = _random(1, height, width, channels), _random(height, width // 2 + 1, channels, 2)
    with FlopCounterMode(display=False) as counter:
        global_filter_matmul(x, weight)
    product = 4 * height * (width // 2 + 1) * channels
    assert counter.get_total_flops() == 2 * (matmul_filter_macs(height, width, channels) - product)
