"""Filters and position embeddings are resized with bicubic interpolation: checked against an
independent NumPy implementation of it (Keys' cubic convolution, a = -0.75, the kernel PyTorch,
OpenCV and the official GFNet code use), with the corner conventions the official code uses:
``align_corners=True`` for filters, ``align_corners=False`` for the position embedding."""
import numpy as np
import pytest
import torch

from gfnet_seg.models import resize_filter, resize_pos_embed

A = -0.75


def cubic_weight(distance: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel: 1 at 0, 0 at the other integers, 0 beyond 2."""
    x = np.abs(distance)
    near = ((A + 2) * x - (A + 3)) * x * x + 1
    far = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
    return np.where(x <= 1, near, np.where(x < 2, far, 0.))


def bicubic_matrix(size_in: int, size_out: int, align_corners: bool) -> np.ndarray:
    """(size_out, size_in) weights of 1-D bicubic interpolation; samples beyond the edge repeat
    the edge sample. align_corners=True maps the first and last samples onto each other;
    align_corners=False maps the sample *areas* onto each other (pixel centres at i + 0.5)."""
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        if align_corners:
            source = i * (size_in - 1) / (size_out - 1) if size_out > 1 else 0.
        else:
            source = (i + 0.5) * size_in / size_out - 0.5
        base = int(np.floor(source))
        for k in range(-1, 3):
            matrix[i, min(max(base + k, 0), size_in - 1)] += cubic_weight(source - (base + k))
    return matrix


def bicubic_resize(grid: np.ndarray, size, align_corners: bool) -> np.ndarray:
    """Resize the first two axes of ``grid`` to ``size``, separably: rows, then columns."""
    rows = bicubic_matrix(grid.shape[0], size[0], align_corners)
    cols = bicubic_matrix(grid.shape[1], size[1], align_corners)
    return np.einsum('jw,iw...->ij...', cols, np.einsum('ih,hw...->iw...', rows, grid.astype(np.float64)))


def oracle_filter(weight: torch.Tensor, size) -> torch.Tensor:
    """A filter ``(h, w, C, 2)`` resized as the official fine-tuning code does (align_corners=True)."""
    return torch.from_numpy(bicubic_resize(weight.numpy(), size, align_corners=True)).to(weight.dtype)


def oracle_pos_embed(pos_embed: torch.Tensor, new_grid, old_grid) -> torch.Tensor:
    """A position embedding ``(1, H*W, C)`` resized from ``old_grid`` to ``new_grid`` (align_corners=False)."""
    grid = pos_embed[0].reshape(*old_grid, -1).numpy()
    resized = bicubic_resize(grid, new_grid, align_corners=False)
    return torch.from_numpy(resized.reshape(1, -1, grid.shape[-1])).to(pos_embed.dtype)


def test_oracle_is_bicubic_interpolation():
    """The oracle's own properties: weights sum to one, the same size is the identity, mirrored
    input gives mirrored output, and with align_corners=True the corners meet and half-way points
    are the symmetric cubic mean of their neighbours."""
    for align_corners in (True, False):
        for size_in, size_out in ((8, 13), (14, 24), (13, 8), (7, 7)):
            matrix = bicubic_matrix(size_in, size_out, align_corners)
            np.testing.assert_allclose(matrix.sum(1), 1, atol=1e-12)
            np.testing.assert_allclose(matrix[::-1, ::-1], matrix, atol=1e-12)
        np.testing.assert_allclose(bicubic_matrix(9, 9, align_corners), np.eye(9), atol=1e-12)
    samples = np.random.default_rng(0).normal(size=10)
    stretched = bicubic_matrix(10, 19, align_corners=True) @ samples
    np.testing.assert_allclose(stretched[::2], samples, atol=1e-12)  # corners meet: every sample kept
    halfway = (19 * (samples[1:-2] + samples[2:-1]) - 3 * (samples[:-3] + samples[3:])) / 32  # weights at t=1/2
    np.testing.assert_allclose(stretched[3:-3:2], halfway, atol=1e-12)


@pytest.mark.parametrize('old, new', [((14, 8), (24, 13)), ((24, 13), (14, 8)), ((7, 4), (16, 9))])
def test_resize_filter_is_bicubic_with_aligned_corners(old, new):
    torch.manual_seed(0)
    weight = torch.randn(*old, 6, 2)
    resized = resize_filter(weight, new)
    assert resized.shape == (*new, 6, 2)
    torch.testing.assert_close(resized, oracle_filter(weight, new), rtol=0, atol=5e-5)
    # The corner convention matters: the other one gives clearly different filters.
    other = bicubic_resize(weight.numpy(), new, align_corners=False)
    assert np.abs(other - resized.numpy()).max() > 0.05


@pytest.mark.parametrize('old, new', [((56, 56), (96, 96)), ((7, 9), (12, 5)), ((14, 14), (14, 14))])
def test_resize_pos_embed_is_bicubic_with_pixel_centres(old, new):
    torch.manual_seed(0)
    pos_embed = torch.randn(1, old[0] * old[1], 5)
    resized = resize_pos_embed(pos_embed, new, old)
    assert resized.shape == (1, new[0] * new[1], 5)
    torch.testing.assert_close(resized, oracle_pos_embed(pos_embed, new, old), rtol=0, atol=5e-5)
    if old != new:
        other = bicubic_resize(pos_embed[0].reshape(*old, -1).numpy(), new, align_corners=True)
        assert np.abs(other.reshape(1, -1, 5) - resized.numpy()).max() > 0.05
    if old[0] == old[1]:  # a square grid is the default
        torch.testing.assert_close(resize_pos_embed(pos_embed, new), resized, rtol=0, atol=0)
