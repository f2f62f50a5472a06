"""The learned global filters of a checkpoint: frequency magnitude and spatial kernel (paper, Fig. 4).

A filter is stored as a half spectrum ``(h, w // 2 + 1, C, 2)`` for an ``h x w`` token grid. The
spatial kernel is its inverse real FFT (the circular convolution kernel the layer applies); the
frequency picture is the magnitude of that kernel's full spectrum, both centred by fftshift.
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..models.checkpoint import read_checkpoint, unwrap_state_dict
from .plotting import pyplot, save_figure

FILTER_SUFFIX = 'filter.complex_weight'


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', name)]


def read_filters(path: str) -> Dict[str, torch.Tensor]:
    """``{layer: complex_weight}`` of a classification or mmseg checkpoint, in network order."""
    state_dict = unwrap_state_dict(read_checkpoint(path))
    filters = {key[:-len(FILTER_SUFFIX) - 1]: value.float() for key, value in state_dict.items()
               if key.endswith(FILTER_SUFFIX)}
    if not filters:
        raise ValueError(f'{path} holds no global filters (no key ends with {FILTER_SUFFIX!r})')
    return dict(sorted(filters.items(), key=lambda item: _natural_key(item[0])))


def select_layers(names: Sequence[str], layers: Optional[Sequence[str]], count: int = 4) -> List[str]:
    """``layers`` given by name ('blocks.2.0') or position ('5', '-1'); by default ``count``
    layers spread evenly from the first to the last."""
    if not layers:
        positions = sorted({round(i * (len(names) - 1) / max(count - 1, 1)) for i in range(min(count, len(names)))})
        return [names[i] for i in positions]
    chosen = []
    for layer in layers:
        if layer in names:
            chosen.append(layer)
        elif re.fullmatch(r'-?\d+', layer) and -len(names) <= int(layer) < len(names):
            chosen.append(names[int(layer)])
        else:
            raise ValueError(f"no global filter '{layer}'; the checkpoint has {len(names)}: "
                             f"{', '.join(names)} (or give a position 0..{len(names) - 1})")
    return chosen


def filter_images(complex_weight: torch.Tensor, channel: int,
                  grid_width: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(frequency magnitude, spatial kernel)`` of one channel, both ``(h, w)`` and fftshifted.

    ``grid_width`` is the token grid's width ``w``; a half spectrum of width ``w // 2 + 1`` fits an
    even and an odd width, and the even one (``2 * (width - 1)``) is assumed by default.
    """
    height, half_width, channels, _ = complex_weight.shape
    if not 0 <= channel < channels:
        raise ValueError(f'channel {channel} out of range: the filter has {channels} channels')
    width = grid_width or 2 * (half_width - 1)
    if width // 2 + 1 != half_width:
        raise ValueError(f'a grid width of {width} does not fit a half spectrum of width {half_width}')
    spectrum = torch.view_as_complex(complex_weight[:, :, channel].contiguous())
    spatial = torch.fft.irfft2(spectrum, s=(height, width))
    frequency = torch.fft.fft2(spatial).abs()
    return torch.fft.fftshift(frequency), torch.fft.fftshift(spatial)


def plot_filters(filters: Dict[str, torch.Tensor], path: str, layers: Optional[Sequence[str]] = None,
                 channels: Sequence[int] = (0, 1, 2, 3), grid_width: Optional[int] = None) -> List[str]:
    """Draw, for each chosen layer, a row of frequency magnitudes and a row of spatial kernels
    (one column per channel) to ``path``; returns the layers drawn."""
    plt = pyplot()

    chosen = select_layers(list(filters), layers)
    fig, axes = plt.subplots(2 * len(chosen), len(channels), squeeze=False,
                             figsize=(1.8 * len(channels) + 1.5, 3.6 * len(chosen)))
    for row, layer in enumerate(chosen):
        for col, channel in enumerate(channels):
            frequency, spatial = filter_images(filters[layer], channel, grid_width)
            for ax, image, cmap, kind in ((axes[2 * row][col], frequency, 'viridis', 'frequency'),
                                          (axes[2 * row + 1][col], spatial, 'RdBu_r', 'spatial')):
                limit = image.abs().max().item() or 1.
                ax.imshow(image.numpy(), cmap=cmap, vmin=None if kind == 'frequency' else -limit,
                          vmax=None if kind == 'frequency' else limit)
                ax.set_xticks([])
                ax.set_yticks([])
                if col == 0:
                    ax.set_ylabel(f'{layer}\n{kind}', fontsize=8)
                if row == 0 and kind == 'frequency':
                    ax.set_title(f'channel {channel}', fontsize=8)
    save_figure(fig, path)
    return chosen
