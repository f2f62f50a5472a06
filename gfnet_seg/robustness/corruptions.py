"""ImageNet-C's 15 corruptions at 5 severities, for any RGB image size, reproducible under a seed.

The formulas and constants are those of ``imagecorruptions`` 1.1.2 (Michaelis et al., 2019), the
size-independent port of Hendrycks & Dietterich's ImageNet-C code (ICLR 2019). That package does
not run on this stack: it imports ``pkg_resources`` (gone with setuptools 81), uses ``np.float_``
(gone in NumPy 2) and ``gaussian(multichannel=...)`` (gone in scikit-image 0.21), and draws from
NumPy's global random state (impulse noise from an unseeded generator). The functions here are
its functions with those calls replaced and every random draw taken from one ``RandomState``, so
that a seed fixes the result: with the same draws they return exactly what ``imagecorruptions``
returns (``tests/test_robustness/test_corruptions.py`` checks this against the package itself).
Frost overlays its six frost pictures, read from the installed package (``pip install -e
'.[robustness]'``).

Glass blur keeps ImageNet-C's pixel "swap", which, written with NumPy views, copies the
neighbour into the pixel rather than exchanging them; it runs on a Python list (fast) instead
of per-pixel NumPy indexing.
"""
import functools
import importlib.util
import math
import os
from io import BytesIO
from typing import Callable, Dict, Sequence

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scipy_zoom

SEVERITIES = (1, 2, 3, 4, 5)
MIN_SIZE = 32  # imagecorruptions' limit: the blur kernels and the frost crop need this much


def _skimage():
    try:
        import skimage.color
        import skimage.filters
        import skimage.util
    except ImportError:
        raise ImportError("the corruptions need scikit-image: pip install -e '.[robustness]'") from None
    return skimage


def _gaussian(image: np.ndarray, sigma, **kwargs) -> np.ndarray:
    channel_axis = -1 if image.ndim == 3 else None
    return _skimage().filters.gaussian(image, sigma=sigma, channel_axis=channel_axis, **kwargs)


# ---------------------------------------------------------------------------------- helpers

def _disk(radius: float, alias_blur: float = 0.1, dtype=np.float32) -> np.ndarray:
    if radius <= 8:
        span, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        span, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(span, span)
    aliased_disk = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=dtype)
    aliased_disk /= np.sum(aliased_disk)
    return cv2.GaussianBlur(aliased_disk, ksize=ksize, sigmaX=alias_blur)  # supersample to antialias


def _plasma_fractal(rng: np.random.RandomState, mapsize: int = 256, wibbledecay: float = 3) -> np.ndarray:
    """Diamond-square height map in [0, 1], ``mapsize`` a power of two."""
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100

    def wibbledmean(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    def fillsquares():
        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(squareaccum)

    def filldiamonds():
        drgrid = maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize]
        ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ltsum = drgrid + np.roll(drgrid, 1, axis=0) + ulgrid + np.roll(ulgrid, -1, axis=1)
        maparray[0:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(ltsum)
        ttsum = drgrid + np.roll(drgrid, 1, axis=1) + ulgrid + np.roll(ulgrid, -1, axis=0)
        maparray[stepsize // 2:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum)

    while stepsize >= 2:
        fillsquares()
        filldiamonds()
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def _clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    crop_h = int(np.ceil(img.shape[0] / float(zoom_factor)))
    top_h = (img.shape[0] - crop_h) // 2
    crop_w = int(np.ceil(img.shape[1] / float(zoom_factor)))
    top_w = (img.shape[1] - crop_w) // 2
    return scipy_zoom(img[top_h:top_h + crop_h, top_w:top_w + crop_w], (zoom_factor, zoom_factor, 1), order=1)


def _shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift by (dx, dy), repeating the border row/column into the space left behind."""
    if dx < 0:
        shifted = np.roll(image, shift=image.shape[1] + dx, axis=1)
        shifted[:, dx:] = shifted[:, dx - 1:dx]
    elif dx > 0:
        shifted = np.roll(image, shift=dx, axis=1)
        shifted[:, :dx] = shifted[:, dx:dx + 1]
    else:
        shifted = image
    if dy < 0:
        shifted = np.roll(shifted, shift=image.shape[0] + dy, axis=0)
        shifted[dy:, :] = shifted[dy - 1:dy, :]
    elif dy > 0:
        shifted = np.roll(shifted, shift=dy, axis=0)
        shifted[:dy, :] = shifted[dy:dy + 1, :]
    return shifted


def _motion_blur(x: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """imagecorruptions' replacement for ImageMagick's motion blur: a one-sided Gaussian
    kernel of ``2 * radius + 1`` taps along ``angle``."""
    width = radius * 2 + 1
    kernel = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    kernel = kernel / np.sum(kernel)
    point = (width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle)))
    hypot = math.hypot(point[0], point[1])
    blurred = np.zeros_like(x, dtype=np.float32)
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hypot) - 0.5)
        dx = -math.ceil(((i * point[1]) / hypot) - 0.5)
        if np.abs(dy) >= x.shape[0] or np.abs(dx) >= x.shape[1]:
            break  # the simulated motion left the image
        blurred = blurred + kernel[i] * _shift(x, dx, dy)
    return blurred


@functools.lru_cache(maxsize=None)
def _frost_picture(index: int) -> np.ndarray:
    """The ``index``-th frost picture of the imagecorruptions package (BGR), read once."""
    spec = importlib.util.find_spec('imagecorruptions')  # its data files, without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("frost overlays the frost pictures of the imagecorruptions package: "
                          "pip install -e '.[robustness]'")
    name = ('frost1.png', 'frost2.png', 'frost3.png', 'frost4.jpg', 'frost5.jpg', 'frost6.jpg')[index]
    return cv2.imread(os.path.join(spec.submodule_search_locations[0], 'frost', name))


# ------------------------------------------------------------------------------ corruptions
# Each takes an RGB uint8 (H, W, 3) array, a severity in 1..5 and the random state; it returns
# the corrupted image as a float array in [0, 255] (or a PIL image), as imagecorruptions does.

def gaussian_noise(x, severity, rng):
    c = [.08, .12, 0.18, 0.26, 0.38][severity - 1]
    x = np.array(x) / 255.
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x, severity, rng):
    c = [60, 25, 12, 5, 3][severity - 1]
    x = np.array(x) / 255.
    return np.clip(rng.poisson(x * c) / float(c), 0, 1) * 255


def impulse_noise(x, severity, rng):
    c = [.03, .06, .09, 0.17, 0.27][severity - 1]
    x = _skimage().util.random_noise(np.array(x) / 255., mode='s&p', amount=c, rng=int(rng.randint(2 ** 31)))
    return np.clip(x, 0, 1) * 255


def defocus_blur(x, severity, rng):
    c = [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)][severity - 1]
    x = np.array(x) / 255.
    kernel = _disk(radius=c[0], alias_blur=c[1])
    channels = np.array([cv2.filter2D(x[:, :, d], -1, kernel) for d in range(3)]).transpose((1, 2, 0))
    return np.clip(channels, 0, 1) * 255


def glass_blur(x, severity, rng):
    sigma, max_delta, iterations = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)][severity - 1]
    x = np.uint8(_gaussian(np.array(x) / 255., sigma) * 255)
    height, width = x.shape[:2]
    rows = range(height - max_delta, max_delta, -1)
    cols = range(width - max_delta, max_delta, -1)
    # All offsets in one draw: the same numbers, in the same order, as one (dx, dy) per pixel.
    offsets = rng.randint(-max_delta, max_delta, size=(iterations * len(rows) * len(cols), 2)).tolist()
    packed = (x[..., 0].astype(np.int64) << 16 | x[..., 1].astype(np.int64) << 8 | x[..., 2]).ravel().tolist()
    step = 0
    for _ in range(iterations):
        for h in rows:
            for w in cols:
                dx, dy = offsets[step]
                step += 1
                packed[h * width + w] = packed[(h + dy) * width + w + dx]  # ImageNet-C's "swap"
    packed = np.array(packed, dtype=np.int64).reshape(height, width)
    x = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1).astype(np.uint8)
    return np.clip(_gaussian(x / 255., sigma), 0, 1) * 255


def motion_blur(x, severity, rng):
    c = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][severity - 1]
    angle = rng.uniform(-45, 45)
    return np.clip(_motion_blur(np.array(x), radius=c[0], sigma=c[1], angle=angle), 0, 255)


def zoom_blur(x, severity, rng):
    c = [np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02),
         np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)][severity - 1]
    x = (np.array(x) / 255.).astype(np.float32)
    out = np.zeros_like(x)
    for zoom_factor in c:
        zoom_layer = _clipped_zoom(x, zoom_factor)[:x.shape[0], :x.shape[1], :]
        out[:zoom_layer.shape[0], :zoom_layer.shape[1]] += zoom_layer
    x = (x + out) / (len(c) + 1)
    return np.clip(x, 0, 1) * 255


def snow(x, severity, rng):
    c = [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
         (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)][severity - 1]
    x = np.array(x, dtype=np.float32) / 255.
    snow_layer = rng.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    snow_layer = _clipped_zoom(snow_layer[..., np.newaxis], c[2])
    snow_layer[snow_layer < c[3]] = 0
    snow_layer = np.clip(snow_layer.squeeze(), 0, 1)
    snow_layer = _motion_blur(snow_layer, radius=c[4], sigma=c[5], angle=rng.uniform(-135, -45))
    snow_layer = np.round(snow_layer * 255).astype(np.uint8) / 255.  # rounded, cropped to the image
    snow_layer = snow_layer[..., np.newaxis][:x.shape[0], :x.shape[1], :]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(x.shape[0], x.shape[1], 1)
    x = c[6] * x + (1 - c[6]) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + snow_layer + np.rot90(snow_layer, k=2), 0, 1) * 255


def frost(x, severity, rng):
    c = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)][severity - 1]
    idx = rng.randint(5)
    frost_image = _frost_picture(idx)
    frost_shape, x_shape = frost_image.shape, np.array(x).shape
    # scale the frost picture to cover the image (the larger factor when both sides are short)
    scaling_factor = max(1, x_shape[0] / frost_shape[0], x_shape[1] / frost_shape[1]) * 1.1
    new_shape = (int(np.ceil(frost_shape[1] * scaling_factor)), int(np.ceil(frost_shape[0] * scaling_factor)))
    frost_rescaled = cv2.resize(frost_image, dsize=new_shape, interpolation=cv2.INTER_CUBIC)
    x_start = rng.randint(0, frost_rescaled.shape[0] - x_shape[0])
    y_start = rng.randint(0, frost_rescaled.shape[1] - x_shape[1])
    frost_rescaled = frost_rescaled[x_start:x_start + x_shape[0], y_start:y_start + x_shape[1]][..., [2, 1, 0]]
    return np.clip(c[0] * np.array(x) + c[1] * frost_rescaled, 0, 255)


def fog(x, severity, rng):
    c = [(1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4)][severity - 1]
    shape = np.array(x).shape
    map_size = 2 ** (int(max(shape)) - 1).bit_length()  # next power of two
    x = np.array(x) / 255.
    max_val = x.max()
    x += c[0] * _plasma_fractal(rng, mapsize=map_size, wibbledecay=c[1])[:shape[0], :shape[1]][..., np.newaxis]
    return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


def brightness(x, severity, rng):
    c = [.1, .2, .3, .4, .5][severity - 1]
    color = _skimage().color
    x = color.rgb2hsv(np.array(x) / 255.)
    x[:, :, 2] = np.clip(x[:, :, 2] + c, 0, 1)
    return np.clip(color.hsv2rgb(x), 0, 1) * 255


def contrast(x, severity, rng):
    c = [0.4, .3, .2, .1, .05][severity - 1]
    x = np.array(x) / 255.
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def elastic_transform(image, severity, rng):
    image = np.array(image, dtype=np.float32) / 255.
    shape = image.shape
    sigma = np.array(shape[:2]) * 0.01
    alpha = [250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12][severity - 1]
    max_dx = max_dy = shape[0] * 0.005
    dx = (_gaussian(rng.uniform(-max_dx, max_dx, size=shape[:2]), sigma, mode='reflect', truncate=3)
          * alpha).astype(np.float32)
    dy = (_gaussian(rng.uniform(-max_dy, max_dy, size=shape[:2]), sigma, mode='reflect', truncate=3)
          * alpha).astype(np.float32)
    x, y, z = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    indices = (np.reshape(y + dy[..., np.newaxis], (-1, 1)), np.reshape(x + dx[..., np.newaxis], (-1, 1)),
               np.reshape(z, (-1, 1)))
    return np.clip(map_coordinates(image, indices, order=1, mode='reflect').reshape(shape), 0, 1) * 255


def pixelate(x, severity, rng):
    c = [0.6, 0.5, 0.4, 0.3, 0.25][severity - 1]
    height, width = np.array(x).shape[:2]
    x = Image.fromarray(np.asarray(x)).resize((int(width * c), int(height * c)), Image.BOX)
    return x.resize((width, height), Image.NEAREST)


def jpeg_compression(x, severity, rng):
    c = [25, 18, 15, 10, 7][severity - 1]
    output = BytesIO()
    Image.fromarray(np.asarray(x)).save(output, 'JPEG', quality=c)
    return Image.open(output)


# In ImageNet-C's order (noise, blur, weather, digital), the order of its mCE table.
CORRUPTIONS: Dict[str, Callable] = {f.__name__: f for f in (
    gaussian_noise, shot_noise, impulse_noise, defocus_blur, glass_blur, motion_blur, zoom_blur,
    snow, frost, fog, brightness, contrast, elastic_transform, pixelate, jpeg_compression)}


def check_corruptions(names: Sequence[str]) -> list:
    """``names`` as a list, or ``ValueError`` naming the first that is not one of the 15."""
    for name in names:
        if name not in CORRUPTIONS:
            raise ValueError(f"unknown corruption '{name}'; valid: {', '.join(CORRUPTIONS)}")
    return list(names)


def check_severities(severities: Sequence[int]) -> list:
    for severity in severities:
        if severity not in SEVERITIES:
            raise ValueError(f'corruption severity must be one of 1..5, got {severity}')
    return list(severities)


def corruption_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed for one image under one setting: the same (seed, keys) give the same draws,
    whatever else ran before (no global random state)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def corrupt(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """``image`` (RGB uint8, (H, W, 3), both sides at least 32) under corruption ``name`` at
    ``severity`` (1..5); the result is uint8 of the same shape, a function of ``seed``."""
    function = CORRUPTIONS[check_corruptions([name])[0]]
    check_severities([severity])
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}')
    if min(image.shape[:2]) < MIN_SIZE:
        raise ValueError(f'the corruptions need images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got '
                         f'{image.shape[1]}x{image.shape[0]}')
    return np.asarray(function(image, severity, np.random.RandomState(seed))).astype(np.uint8)  # truncates, as np.uint8
