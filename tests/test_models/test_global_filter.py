"""GlobalFilter against independent oracles, and the resize functions."""
import pytest
import torch
import torch.nn.functional as F

from gfnet_seg.models import global_filter
from gfnet_seg.models.global_filter import (GlobalFilter, filter_size, resize_filter,
                                            resize_pos_embed)


def circular_conv2d(x, kernel):
    """Explicit 2-D circular convolution of (B, H, W, C) maps with a per-channel (H, W, C) kernel:
    y[i, j] = sum_{a, b} kernel[a, b] * x[(i - a) % H, (j - b) % W]."""
    out = torch.zeros_like(x)
    height, width = kernel.shape[:2]
    for a in range(height):
        for b in range(width):
            out += kernel[a, b] * torch.roll(x, shifts=(a, b), dims=(1, 2))
    return out


@pytest.mark.parametrize('grad', [True, False], ids=['training', 'inference'])
@pytest.mark.parametrize('grid', [(6, 6), (5, 8), (7, 4)])
def test_global_filter_is_circular_convolution(grid, grad):
    torch.manual_seed(0)
    height, width = grid
    layer = GlobalFilter(dim=3, h=height, w=width // 2 + 1).double()
    x = torch.randn(2, height, width, 3, dtype=torch.float64)
    # The spatial kernel of a half-spectrum filter: its inverse real FFT (unnormalised), since
    # the forward and inverse 'ortho' scalings cancel.
    spectrum = torch.view_as_complex(layer.complex_weight.detach())
    kernel = torch.fft.irfft2(spectrum, s=grid, dim=(0, 1))
    with torch.set_grad_enabled(grad):
        out = layer(x)
    # GlobalFilter computes in float32; the oracle in float64.
    torch.testing.assert_close(out, circular_conv2d(x, kernel), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('grid', [(64, 64), (70, 66), (65, 63), (8, 6), (7, 9)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_eager_transforms_equal_rfft2_and_irfft2(grid, dtype):
    """The eager CPU transforms (split into 1-D transforms), called directly, against torch.fft's 2-D
    transforms over dims (1, 2); the inverse returns contiguous channels-last tokens."""
    torch.manual_seed(0)
    x = torch.randn(2, *grid, 5, dtype=dtype)
    spectrum = global_filter.forward_transform(x)
    expected = torch.fft.rfft2(x, dim=(1, 2), norm='ortho')
    assert spectrum.dtype == expected.dtype and spectrum.shape == expected.shape
    torch.testing.assert_close(spectrum, expected)
    back = global_filter.inverse_transform(spectrum.clone(), *grid)
    assert back.is_contiguous() and back.dtype == dtype
    torch.testing.assert_close(back, torch.fft.irfft2(expected, s=grid, dim=(1, 2), norm='ortho'))
    torch.testing.assert_close(back, x)


def test_global_filter_equals_reference_formula():
    """The paper's formulation: rfft2 over dims (1, 2) of (B, H, W, C), multiply, irfft2."""
    torch.manual_seed(0)
    layer = GlobalFilter(dim=8, h=12, w=10)
    x = torch.randn(3, 12, 18, 8)
    reference = torch.fft.irfft2(
        torch.fft.rfft2(x, dim=(1, 2), norm='ortho') * torch.view_as_complex(layer.complex_weight),
        s=(12, 18), dim=(1, 2), norm='ortho')
    torch.testing.assert_close(layer(x), reference, atol=1e-5, rtol=1e-5)


def test_resize_filter_to_own_size_is_identity():
    weight = torch.randn(14, 8, 5, 2)
    torch.testing.assert_close(resize_filter(weight, (14, 8)), weight, atol=1e-6, rtol=0)


@pytest.mark.parametrize('grid', [(24, 24), (32, 43), (17, 9)])
def test_resize_filter_shapes(grid):
    weight = torch.randn(14, 8, 5, 2)
    size = filter_size(grid)
    assert size == (grid[0], grid[1] // 2 + 1)
    assert resize_filter(weight, size).shape == (*size, 5, 2)


def test_resize_filter_interpolates_each_plane_with_aligned_corners():
    """Oracle: interpolating real and imaginary parts of each channel on their own."""
    weight = torch.randn(7, 4, 3, 2)
    resized = resize_filter(weight, (12, 7))
    for c in range(3):
        for part in range(2):
            plane = weight[:, :, c, part][None, None]
            expected = F.interpolate(plane, size=(12, 7), mode='bicubic', align_corners=True)[0, 0]
            torch.testing.assert_close(resized[:, :, c, part], expected)
    # align_corners=True keeps the corner coefficients (DC term among them) exactly.
    torch.testing.assert_close(resized[0, 0], weight[0, 0])
    torch.testing.assert_close(resized[-1, -1], weight[-1, -1])


def test_resize_pos_embed_identity_and_non_square():
    pos = torch.randn(1, 6 * 9, 4)
    torch.testing.assert_close(resize_pos_embed(pos, (6, 9), (6, 9)), pos, atol=1e-6, rtol=0)
    assert resize_pos_embed(pos, (12, 5), (6, 9)).shape == (1, 60, 4)
    square = torch.randn(1, 49, 4)
    assert resize_pos_embed(square, (14, 10)).shape == (1, 140, 4)
    with pytest.raises(ValueError, match='not a 5x5 grid'):
        resize_pos_embed(pos, (3, 3), (5, 5))


def test_resized_filter_matches_resize_function_at_run_time():
    """A grid other than the stored one filters with resize_filter's output."""
    torch.manual_seed(0)
    layer = GlobalFilter(dim=4, h=8, w=5)
    x = torch.randn(1, 12, 10, 4)
    resized = torch.view_as_complex(resize_filter(layer.complex_weight, filter_size((12, 10))))
    expected = torch.fft.irfft2(torch.fft.rfft2(x, dim=(1, 2), norm='ortho') * resized,
                                s=(12, 10), dim=(1, 2), norm='ortho')
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_filter_in_the_spectrum_layout_is_cached_in_eval():
    """Eager inference multiplies the spectrum by a filter laid out in the spectrum's memory order
    (the FFTs leave it channel-major), made once per size and layout."""
    layer = GlobalFilter(dim=8, h=12, w=10).eval()
    spectrum = global_filter.forward_transform(torch.randn(2, 12, 18, 8))
    with torch.no_grad():
        weight = layer.spectral_weight((12, 18), spectrum)
        assert weight.stride() == spectrum.stride()[1:] and not weight.is_contiguous()
        torch.testing.assert_close(weight, layer.spectral_weight((12, 18)), rtol=0, atol=0)
        assert layer.spectral_weight((12, 18), spectrum) is weight


def test_eval_cache_per_size_and_invalidation():
    layer = GlobalFilter(dim=4, h=8, w=5).eval()
    with torch.no_grad():
        first = layer.spectral_weight((12, 10))
        assert layer.spectral_weight((12, 10)) is first          # cached in eval mode
        assert layer.spectral_weight((16, 16)) is not first      # per size
        layer.complex_weight.mul_(2)                             # an update invalidates it
        assert torch.allclose(layer.spectral_weight((12, 10)), first * 2)
    layer.train()
    with torch.no_grad():
        assert layer.spectral_weight((12, 10)) is not layer.spectral_weight((12, 10))
    # With autograd on, nothing is cached, so gradients reach the parameter.
    layer.eval()
    layer(torch.randn(1, 12, 10, 4)).sum().backward()
    assert layer.complex_weight.grad is not None and layer.complex_weight.grad.abs().sum() > 0


@pytest.mark.parametrize('grad', [True, False])
def test_fft_in_float32_under_autocast(grad, fft_inputs):
    """Every transform gets float32 (or complex64) input under bf16 autocast, in the training and the
    inference path; the output comes back in the input's dtype."""
    layer = GlobalFilter(dim=4, h=8, w=5)
    with torch.autocast('cpu', dtype=torch.bfloat16), torch.set_grad_enabled(grad):
        x = torch.randn(2, 8, 8, 4).bfloat16().requires_grad_(grad)
        out = layer(x)
    if grad:
        out.float().sum().backward()
        assert x.grad.dtype == torch.bfloat16 and layer.complex_weight.grad is not None
    assert fft_inputs and set(fft_inputs) <= {torch.float32, torch.complex64}
    assert out.dtype == torch.bfloat16
