"""Generated ImageNet-layout folders and the tiny model flags the classification tests share."""
import json
import os

import numpy as np
from PIL import Image

# Four classes told apart by colour: learnable in a few steps, and chance is 25%.
COLOURS = ((220, 40, 40), (40, 200, 40), (40, 60, 220), (230, 220, 50))
IMAGE_SIZE = 32
EMBED_DIMS = (16, 32, 64, 128)
DEPTHS = (1, 1, 1, 1)
ARCH = 'gfnet-h-ti'
# GFNet-H-Ti's shape at small widths; --input-size 32 suits the pyramid's total stride of 32. On the
# CPU whatever the machine: the results the tests compare (one process against two, a resumed run
# against a straight one, an oracle in float32) assume it, and CUDA would also turn AMP on.
TINY_FLAGS = ['--embed-dims', *map(str, EMBED_DIMS), '--depths', *map(str, DEPTHS),
              '--input-size', str(IMAGE_SIZE), '--num_workers', '0', '--log-interval', '2', '--device', 'cpu']
TINY_MODEL = ['--arch', ARCH, *TINY_FLAGS]
# The recipe without the augmentations that make a 4-epoch run on 64 images a coin toss.
EASY_RECIPE = ['--no-repeated-aug', '--aa', 'none', '--mixup', '0', '--cutmix', '0', '--reprob', '0',
               '--smoothing', '0', '--lr', '2e-3', '--unscale-lr', '--warmup-epochs', '1']


def make_image_folder(root, train_per_class=16, val_per_class=(8, 8, 8, 9), seed=0):
    """``root/{train,val}/<class>/*.JPEG`` with noisy solid-colour images. The default val split
    has 33 images, a count no two processes share evenly."""
    rng = np.random.default_rng(seed)
    counts = {'train': [train_per_class] * len(COLOURS), 'val': list(val_per_class)}
    for split, per_class in counts.items():
        for label, (colour, count) in enumerate(zip(COLOURS, per_class)):
            folder = os.path.join(root, split, f'n{label:08d}')
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                pixels = np.asarray(colour) + rng.normal(0, 25, (IMAGE_SIZE, IMAGE_SIZE, 3))
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                    os.path.join(folder, f'{split}_{i:04d}.JPEG'))
    return str(root)


def read_log(output_dir):
    with open(os.path.join(output_dir, 'log.txt')) as f:
        return [json.loads(line) for line in f]
