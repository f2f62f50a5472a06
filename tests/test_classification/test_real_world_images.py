"""The images people actually have in an ImageFolder: grayscale, RGBA, CMYK, palette, 16-bit and
EXIF-rotated files are read as the RGB image a viewer shows, and a run trains and evaluates on them."""
import math
import os

import numpy as np
from PIL import Image

from gfnet_seg.classification import main, read_image

from cls_utils import COLOURS, EASY_RECIPE, IMAGE_SIZE, TINY_MODEL, read_log

KINDS = ('gray', 'rgba', 'cmyk', 'palette', '16bit', 'exif')


def save(path_stem, colour, kind, rng):
    """A noisy ``colour`` image saved as ``kind``; returns its path and the RGB pixels expected."""
    pixels = np.clip(np.asarray(colour) + rng.normal(0, 20, (IMAGE_SIZE, IMAGE_SIZE, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    if kind == 'gray':
        path, image = f'{path_stem}.jpg', image.convert('L')
        expected = np.repeat(np.asarray(image)[..., None], 3, axis=2)
    elif kind == 'rgba':
        path, expected = f'{path_stem}.png', pixels
        image = Image.fromarray(np.dstack([pixels, rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE), np.uint8)]))
    elif kind == 'cmyk':
        path, image, expected = f'{path_stem}.jpg', image.convert('CMYK'), pixels
    elif kind == 'palette':
        path, image = f'{path_stem}.png', image.convert('P')
        expected = np.asarray(image.convert('RGB'))
    elif kind == '16bit':
        gray = np.asarray(image.convert('L'))
        path, image = f'{path_stem}.png', Image.fromarray(gray.astype(np.uint16) * 257)
        expected = np.repeat(gray[..., None], 3, axis=2)
    else:  # stored upside down, with the EXIF orientation "rotate 180 degrees to display"
        path, expected = f'{path_stem}.jpg', pixels
        exif = Image.Exif()
        exif[0x0112] = 3
        image.rotate(180).save(path, exif=exif, quality=100, subsampling=0)
        return path, expected
    image.save(path, **({'quality': 100, 'subsampling': 0} if path.endswith('.jpg') else {}))
    return path, expected


def test_every_kind_of_image_trains_and_evaluates(tmp_path):
    rng = np.random.default_rng(0)
    for split, per_kind in (('train', 2), ('val', 1)):
        for label, colour in enumerate(COLOURS):
            folder = tmp_path / split / f'n{label:08d}'
            folder.mkdir(parents=True)
            for kind in KINDS:
                for i in range(per_kind):
                    path, expected = save(str(folder / f'{kind}_{i}'), colour, kind, rng)
                    rgb = read_image(path)
                    assert rgb.mode == 'RGB' and rgb.size == (IMAGE_SIZE, IMAGE_SIZE), kind
                    # JPEG (quality 100) and CMYK round-trips change a few levels at most
                    assert np.abs(np.asarray(rgb, int) - expected).mean() < 2, kind

    output_dir = str(tmp_path / 'run')
    main([*TINY_MODEL, *EASY_RECIPE, '--data-path', str(tmp_path), '--output_dir', output_dir, '--epochs', '1',
          '--batch-size', '8'])
    (entry,) = read_log(output_dir)
    assert entry['test_images'] == len(COLOURS) * len(KINDS)
    assert math.isfinite(entry['train_loss']) and math.isfinite(entry['test_loss'])
    assert os.path.isfile(os.path.join(output_dir, 'checkpoint.pth'))
