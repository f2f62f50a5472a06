"""The 15 corruptions: equal to imagecorruptions itself (the published formulas), ordered by
severity, reproducible under a seed, and bad requests refused with the name of what is wrong."""
import importlib.util
import os
import sys
import types

import numpy as np
import pytest

from gfnet_seg.robustness.corruptions import CORRUPTIONS, check_corruptions, corrupt, corruption_seed

pytest.importorskip('skimage')

# The published constants make these three not monotone at every step (glass blur: severity 2
# runs one shuffling pass, severity 1 two; snow: severity 3 zooms the flakes larger, so fewer
# cover the image; frost: the image's weight falls as the frost's rises, so on a bright image the
# change can shrink; fog: severities 3 and 4 add the same amount of fog, 4 with a rougher
# texture); the reference package gives the same numbers (test_equals_imagecorruptions).
NOT_MONOTONE = {'glass_blur', 'snow', 'frost', 'fog'}


def textured_image(seed=0, height=48, width=64):
    """A smooth random RGB image, as natural images are locally correlated."""
    from skimage.filters import gaussian
    noise = np.random.RandomState(seed).rand(height, width, 3)
    return np.uint8(gaussian(noise, 2, channel_axis=-1) * 255)


@pytest.fixture
def imagecorruptions(monkeypatch):
    """The imagecorruptions 1.1.2 package, run on today's stack through the least shims: the
    ``pkg_resources`` it imports, NumPy's removed ``np.float_``, scikit-image's removed
    ``multichannel=`` and a seed for the impulse noise (drawn from NumPy's global state, as our
    version draws it from its own)."""
    spec = importlib.util.find_spec('imagecorruptions')
    if spec is None:
        pytest.skip('imagecorruptions is not installed')
    import skimage.color
    import skimage.filters
    import skimage.util
    folder = spec.submodule_search_locations[0]
    monkeypatch.setitem(sys.modules, 'pkg_resources', types.SimpleNamespace(
        resource_filename=lambda package, name: os.path.join(folder, name)))
    monkeypatch.setattr(np, 'float_', np.float64, raising=False)
    for name in [m for m in sys.modules if m.split('.')[0] == 'imagecorruptions']:
        monkeypatch.delitem(sys.modules, name)
    import imagecorruptions
    import imagecorruptions.corruptions as module

    def gaussian(image, sigma=1, multichannel=None, **kwargs):
        return skimage.filters.gaussian(image, sigma=sigma, channel_axis=-1 if multichannel else None, **kwargs)

    def random_noise(image, **kwargs):
        return skimage.util.random_noise(image, rng=int(np.random.randint(2 ** 31)), **kwargs)

    monkeypatch.setattr(module, 'gaussian', gaussian)
    monkeypatch.setattr(module, 'sk', types.SimpleNamespace(color=skimage.color,
                                                             util=types.SimpleNamespace(random_noise=random_noise)))
    return imagecorruptions


@pytest.mark.parametrize('name', list(CORRUPTIONS))
def test_equals_imagecorruptions(imagecorruptions, name):
    image = textured_image()
    for severity in (1, 3, 5):
        np.random.seed(11)
        expected = imagecorruptions.corrupt(image, severity, name)
        np.testing.assert_array_equal(corrupt(image, name, severity, seed=11), expected, err_msg=f'{name} {severity}')


def test_the_fifteen_of_imagenet_c(imagecorruptions):
    assert list(CORRUPTIONS) == imagecorruptions.get_corruption_names('common')


def test_severity_orders_the_change():
    """Mean absolute change from the clean image grows with the severity."""
    image = textured_image(seed=1, height=64, width=64)
    for name in CORRUPTIONS:
        change = [np.abs(corrupt(image, name, s, seed=3).astype(float) - image).mean() for s in range(1, 6)]
        if name in NOT_MONOTONE:
            assert change[0] < change[4], (name, change)
        else:
            assert all(a < b for a, b in zip(change, change[1:])), (name, change)
        assert change[0] > 0, name


def test_deterministic_under_a_seed():
    image = textured_image(seed=2)
    for name in CORRUPTIONS:
        first = corrupt(image, name, 4, seed=5)
        np.testing.assert_array_equal(first, corrupt(image, name, 4, seed=5), err_msg=name)
        assert first.shape == image.shape and first.dtype == np.uint8
    for name in ('gaussian_noise', 'impulse_noise', 'glass_blur', 'snow', 'fog', 'elastic_transform'):
        assert not np.array_equal(corrupt(image, name, 4, seed=5), corrupt(image, name, 4, seed=6)), name
    assert corruption_seed(0, 1, 2) == corruption_seed(0, 1, 2) != corruption_seed(0, 2, 1)


def test_bad_requests():
    image = textured_image()
    with pytest.raises(ValueError, match="unknown corruption 'fogg'"):
        corrupt(image, 'fogg', 1)
    with pytest.raises(ValueError, match="unknown corruption 'blur'"):
        check_corruptions(['fog', 'blur'])
    with pytest.raises(ValueError, match='severity must be one of 1..5, got 6'):
        corrupt(image, 'fog', 6)
    with pytest.raises(ValueError, match='at least 32x32'):
        corrupt(image[:20], 'fog', 1)
    with pytest.raises(ValueError, match='RGB uint8'):
        corrupt(image.astype(np.float32), 'fog', 1)
