"""A small, learnable segmentation data set in the exact ADE20K layout, generated offline.

No real data set can be downloaded here, yet the demo and the tests must show that training
learns something. Each image is a textured background with a few random shapes (ellipses,
rotated rectangles, triangles); every class has its own colour *and* texture, so a short run
separates them. Colours and illumination are jittered per image, and JPEG compression adds
noise, so the task is not a lookup of one exact colour.

Layout and label conventions are ADE20K's (``images/{training,validation}/*.jpg``,
``annotations/{training,validation}/*.png``, value 0 = "other", ignored by
``reduce_zero_label``): file value ``c + 1`` is class ``c`` of ``CLASSES``, and a thin band
around every shape boundary is 0, like the unlabelled edges of real annotations.
"""
import os
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from tqdm import tqdm

CLASSES = ('background', 'stripes', 'checks', 'dots', 'waves', 'grain')
# Colours the textures are painted in (RGB); the overlay uses PALETTE instead, so that a
# prediction stands out from the image it is drawn on.
BASE_COLOURS = ((120, 120, 110), (200, 60, 50), (50, 80, 200), (220, 190, 40), (170, 60, 170), (40, 170, 170))
PALETTE = [[0, 0, 0], [255, 0, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 0]]
SPLITS = {'training': 'train', 'validation': 'val'}  # folder -> ADE file name infix
BOUNDARY_WIDTH = 3  # pixels of label 0 ("other") along each shape boundary


def _texture(class_index: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The class's pattern in [-1, 1], shape (H, W), with a random phase per image."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy += rng.uniform(0, 32)
    xx += rng.uniform(0, 32)
    if class_index == 0:  # smooth blotches
        coarse = rng.uniform(-1, 1, (height // 16 + 2, width // 16 + 2)).astype(np.float32)
        return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(-1, 1)
    if class_index == 1:  # diagonal stripes
        return np.sin(2 * np.pi * (xx * 0.8 + yy * 0.6) / 6.0)
    if class_index == 2:  # checkerboard
        return np.sign(np.sin(2 * np.pi * xx / 10.0) * np.sin(2 * np.pi * yy / 10.0))
    if class_index == 3:  # dots on a grid
        dist = np.hypot((xx % 8.0) - 4.0, (yy % 8.0) - 4.0)
        return np.where(dist < 2.0, 1.0, -0.6).astype(np.float32)
    if class_index == 4:  # wavy vertical bands
        return np.sin(2 * np.pi * (xx + 3.0 * np.sin(2 * np.pi * yy / 16.0)) / 7.0)
    return rng.uniform(-1, 1, (height, width)).astype(np.float32)  # fine grain


def _draw_shape(label: np.ndarray, class_index: int, rng: np.random.Generator) -> None:
    """Paint one random ellipse, rotated rectangle or triangle of ``class_index`` into ``label``."""
    height, width = label.shape
    side = min(height, width)
    centre = np.array([rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height])
    radius = rng.uniform(0.12, 0.3) * side
    kind = rng.integers(3)
    if kind == 0:
        axes = (int(radius), int(radius * rng.uniform(0.5, 1.0)))
        cv2.ellipse(label, tuple(int(v) for v in centre), axes, rng.uniform(0, 180), 0, 360,
                    int(class_index), thickness=-1)
        return
    if kind == 1:
        rect = (tuple(centre), (2 * radius, 2 * radius * rng.uniform(0.4, 1.0)), rng.uniform(0, 180))
        corners = cv2.boxPoints(rect)
    else:
        angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
        corners = centre + radius * 1.3 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    cv2.fillPoly(label, [np.round(corners).astype(np.int32)], int(class_index))


def render_sample(height: int, width: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3) uint8 RGB and its ADE-style annotation (H, W) uint8 (0 = other)."""
    label = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(2, 6)):
        _draw_shape(label, rng.integers(1, len(CLASSES)), rng)
    image = np.zeros((height, width, 3), np.float32)
    illumination = rng.uniform(0.8, 1.2)
    for index, colour in enumerate(BASE_COLOURS):
        mask = label == index
        if mask.any():
            shade = (np.array(colour, np.float32) + rng.uniform(-20, 20, 3)) * illumination
            pattern = _texture(index, height, width, rng)[mask]
            image[mask] = shade * (1.0 + 0.35 * pattern[:, None])
    image += rng.normal(0, 6, image.shape)
    kernel = np.ones((BOUNDARY_WIDTH, BOUNDARY_WIDTH), np.uint8)
    boundary = cv2.dilate(label, kernel) != cv2.erode(label, kernel)
    annotation = np.where(boundary, 0, label + 1).astype(np.uint8)
    return image.clip(0, 255).astype(np.uint8), annotation


def make_synthetic_ade20k(out_dir: str, num_train: int = 200, num_val: int = 40, size: int = 128,
                          seed: int = 0, progress: bool = True) -> Dict[str, int]:
    """Write the data set under ``out_dir``; returns the number of images per split folder.

    Images are ``size`` pixels high and ``size`` to ``1.5 * size`` wide, so that whole-image
    inference meets non-square sizes that are not multiples of 32. Image ``i`` of a split
    depends only on (seed, split, i): adding images leaves the existing ones unchanged.
    """
    if size < 32:
        raise ValueError(f'--size {size} is below 32, the total stride of GFNet-H')
    counts = {'training': num_train, 'validation': num_val}
    jobs = [(folder, i) for folder, n in counts.items() for i in range(n)]
    for folder in counts:
        os.makedirs(osp.join(out_dir, 'images', folder), exist_ok=True)
        os.makedirs(osp.join(out_dir, 'annotations', folder), exist_ok=True)
    for folder, index in tqdm(jobs, desc=f'writing {out_dir}', disable=not progress):
        rng = np.random.default_rng([seed, list(counts).index(folder), index])
        width = int(rng.integers(size, size * 3 // 2 + 1))
        image, annotation = render_sample(size, width, rng)
        name = f'ADE_{SPLITS[folder]}_{index + 1:08d}'
        cv2.imwrite(osp.join(out_dir, 'images', folder, name + '.jpg'), image[..., ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imwrite(osp.join(out_dir, 'annotations', folder, name + '.png'), annotation)
    return counts


@DATASETS.register_module()
class SyntheticShapesDataset(BaseSegDataset):
    """The generated data set: ADE20K's layout and suffixes, with the classes of this module."""
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
