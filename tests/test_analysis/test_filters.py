"""Filter pictures: what is drawn equals the oracle transforms of the planted filter."""
import matplotlib.axes
import pytest
import timm
import torch

import gfnet_seg  # noqa: F401  (registers gfnet_h_ti in timm)
from gfnet_seg.analysis.filters import filter_images, read_filters, select_layers

LAYER = 'blocks.2.3'


@pytest.fixture(scope='module')
def planted():
    """A gfnet_h_ti state dict whose layer blocks.2.3 holds a known filter (14 x 8 for 14 x 14)."""
    state_dict = timm.create_model('gfnet_h_ti', pretrained=False).state_dict()
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(state_dict[f'{LAYER}.filter.complex_weight'].shape, generator=generator)
    state_dict[f'{LAYER}.filter.complex_weight'] = weight
    return state_dict, weight


@pytest.fixture
def drawn(monkeypatch):
    """Every image handed to imshow, in order."""
    images = []
    original = matplotlib.axes.Axes.imshow

    def record(self, data, *args, **kwargs):
        images.append(torch.as_tensor(data))
        return original(self, data, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, 'imshow', record)
    return images


@pytest.mark.parametrize('wrap', ['classification', 'mmseg'])
def test_drawn_filters_are_the_transforms_of_the_checkpoint(tool, planted, drawn, tmp_path, wrap):
    state_dict, weight = planted
    checkpoint = ({'model': state_dict} if wrap == 'classification'
                  else {'meta': {}, 'state_dict': {f'backbone.{k}': v for k, v in state_dict.items()}})
    torch.save(checkpoint, tmp_path / 'ckpt.pth')
    out = tmp_path / 'filters.png'
    tool('visualize_filters')([str(tmp_path / 'ckpt.pth'), '--out', str(out), '--layers', LAYER,
                               '--channels', '2', '7'])
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert len(drawn) == 4  # (frequency, spatial) for two channels
    for (frequency, spatial), channel in zip([drawn[0:2], drawn[2:4]], (2, 7)):
        spectrum = torch.complex(weight[:, :, channel, 0], weight[:, :, channel, 1])
        kernel = torch.fft.irfft2(spectrum, s=(14, 14))
        torch.testing.assert_close(spatial, torch.roll(kernel, shifts=(7, 7), dims=(0, 1)))
        # Off the self-conjugate columns (0 and 7), the drawn magnitude is the learned one; the
        # shift puts frequency (0, 0) at (7, 7).
        unshifted = torch.roll(frequency, shifts=(-7, -7), dims=(0, 1))
        torch.testing.assert_close(unshifted[:, 1:7], spectrum.abs()[:, 1:7], atol=1e-5, rtol=1e-5)


def test_read_filters_in_network_order(planted, tmp_path):
    torch.save({'model': planted[0]}, tmp_path / 'ckpt.pth')
    names = list(read_filters(str(tmp_path / 'ckpt.pth')))
    assert len(names) == 3 + 3 + 10 + 3
    assert names[:4] == ['blocks.0.0', 'blocks.0.1', 'blocks.0.2', 'blocks.1.0']
    assert names[6:9] == ['blocks.2.0', 'blocks.2.1', 'blocks.2.2'] and names[-1] == 'blocks.3.2'
    assert select_layers(names, None) == ['blocks.0.0', 'blocks.2.0', 'blocks.2.6', 'blocks.3.2']
    assert select_layers(names, ['-1', 'blocks.1.2']) == ['blocks.3.2', 'blocks.1.2']
    with pytest.raises(ValueError, match="no global filter 'blocks.9.0'"):
        select_layers(names, ['blocks.9.0'])


def test_bad_inputs_are_named(tmp_path):
    torch.save({'model': {'head.weight': torch.zeros(2, 2)}}, tmp_path / 'none.pth')
    with pytest.raises(ValueError, match='holds no global filters'):
        read_filters(str(tmp_path / 'none.pth'))
    weight = torch.randn(6, 4, 3, 2)
    with pytest.raises(ValueError, match='channel 3 out of range'):
        filter_images(weight, 3)
    with pytest.raises(ValueError, match='grid width of 8 does not fit'):
        filter_images(weight, 0, grid_width=8)
    assert filter_images(weight, 0, grid_width=7)[1].shape == (6, 7)
