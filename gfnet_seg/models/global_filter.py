"""The global filter layer of GFNet and the two resizing functions every other part calls.

A global filter mixes tokens with an element-wise product in the 2-D frequency domain, which is
a circular convolution over the whole token grid at O(HW log HW). The learnable filter is stored
as in the official code, ``complex_weight`` of shape ``(h, w // 2 + 1, C, 2)`` (real, imag), sized
for the grid seen in training; other grids get a resized copy (bicubic), made on the fly and, in
eval mode without autograd, cached per size.
"""
from collections import OrderedDict
from typing import Callable, Hashable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# Distinct input sizes remembered per module in eval mode (whole-image inference on a data set
# of varied image sizes must not keep one resized filter per image forever).
EVAL_CACHE_SIZES = 8


def filter_size(grid_hw: Sequence[int]) -> Tuple[int, int]:
    """Shape (h, w) of the half-spectrum filter for an H x W token grid: rfft2 keeps W // 2 + 1."""
    return int(grid_hw[0]), int(grid_hw[1]) // 2 + 1


def resize_filter(complex_weight: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize a filter ``(h, w, C, 2)`` to ``(size[0], size[1], C, 2)``.

    Bicubic interpolation on the real and imaginary planes with ``align_corners=True``, as the
    official GFNet fine-tuning code does when it moves a 224 filter to 384.
    """
    h, w, channels, two = complex_weight.shape
    if two != 2:
        raise ValueError(f'expected a filter of shape (h, w, C, 2), got {tuple(complex_weight.shape)}')
    planes = complex_weight.reshape(1, h, w, channels * 2).permute(0, 3, 1, 2).float()
    planes = F.interpolate(planes, size=tuple(size), mode='bicubic', align_corners=True)
    new_h, new_w = planes.shape[-2:]
    return planes.permute(0, 2, 3, 1).reshape(new_h, new_w, channels, 2).to(complex_weight.dtype)


def resize_pos_embed(pos_embed: torch.Tensor, new_grid: Sequence[int],
                     old_grid: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Resize a position embedding ``(1, H*W, C)`` from ``old_grid`` to ``new_grid`` (bicubic).

    ``old_grid`` defaults to a square grid. ``align_corners=False`` as in the official code.
    """
    _, num_tokens, channels = pos_embed.shape
    if old_grid is None:
        side = int(round(num_tokens ** 0.5))
        old_grid = (side, side)
    if old_grid[0] * old_grid[1] != num_tokens:
        raise ValueError(f'position embedding has {num_tokens} tokens, not a {old_grid[0]}x{old_grid[1]} grid')
    grid = pos_embed.reshape(1, old_grid[0], old_grid[1], channels).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=tuple(new_grid), mode='bicubic', align_corners=False)
    return grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)


def cached_for_size(module: nn.Module, param: torch.Tensor, key: Hashable,
                    compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``compute()``, cached per ``key`` on ``module`` in eval mode when autograd is off.

    An entry is reused only while ``param`` is the same tensor at the same version, so a weight
    update, ``load_state_dict`` or a move to another device recomputes it.
    """
    if module.training or torch.is_grad_enabled():
        return compute()
    cache = module.__dict__.setdefault('_size_cache', OrderedDict())
    stamp = (param._version, param.data_ptr(), param.device, param.dtype)
    entry = cache.get(key)
    if entry is None or entry[0] != stamp:
        entry = cache[key] = (stamp, compute())
        while len(cache) > EVAL_CACHE_SIZES:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return entry[1]


class GlobalFilter(nn.Module):
    """rfft2 over the token grid, multiply by a learnable complex filter, irfft2 back (norm 'ortho').

    Takes and returns tokens ``(B, H, W, C)`` and transforms dims (1, 2) of that layout directly
    (the channels are a batch of unit stride for MKL and cuFFT): no permute copy on either side,
    and the output is contiguous for the LayerNorm and MLP after it. The FFT runs in float32 even
    under autocast (half-precision FFTs are limited to power-of-two sizes and lose accuracy); the
    result is cast back to the input dtype.
    """

    def __init__(self, dim: int, h: int = 14, w: int = 8):
        super().__init__()
        self.complex_weight = nn.Parameter(torch.randn(h, w, dim, 2, dtype=torch.float32) * 0.02)

    def spectral_weight(self, grid_hw: Tuple[int, int]) -> torch.Tensor:
        """The complex filter for an H x W grid: ``(H, W // 2 + 1, C)``."""
        def compute():
            weight = self.complex_weight
            size = filter_size(grid_hw)
            if tuple(weight.shape[:2]) != size:
                weight = resize_filter(weight, size)
            return torch.view_as_complex(weight.float().contiguous())

        return cached_for_size(self, self.complex_weight, tuple(grid_hw), compute)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, _ = x.shape
        weight = self.spectral_weight((height, width))
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectrum = torch.fft.rfft2(x.float(), dim=(1, 2), norm='ortho')
            # Without autograd nothing needs the spectrum again: multiply in place, saving a
            # buffer the size of the spectrum.
            spectrum = spectrum * weight if torch.is_grad_enabled() else spectrum.mul_(weight)
            out = torch.fft.irfft2(spectrum, s=(height, width), dim=(1, 2), norm='ortho')
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        h, w, dim, _ = self.complex_weight.shape
        return f'dim={dim}, filter=({h}, {w})'
