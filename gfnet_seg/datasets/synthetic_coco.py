"""A small, learnable detection and instance segmentation data set in the COCO layout, generated offline.

The detection counterpart of ``synthetic.py`` (whose textures and colours it reuses): every image
is a textured background with 1 to 4 objects, each category its own shape *and* colour/texture,
so that a tiny detector separates them within a short run:

====  ===========  =====================  ==========
id    name         shape                  texture
====  ===========  =====================  ==========
1     ellipse      filled ellipse         stripes
2     rectangle    rotated rectangle      checks
3     triangle     triangle               dots
5     star         five-pointed star      waves
====  ===========  =====================  ==========

What real COCO files have and the code reading them must cope with is here too: category ids
that are not contiguous (no 4, as COCO has no 12), images of different, non-square sizes (height
and width each 0.75 to 1.25 times ``size``), images without any object (every 12th, from the 6th
on), objects overlapping a little (no object loses more than a fifth of its area to later ones), and in the training
set rare crowd regions (``iscrowd=1``, every 24th image from the 8th on: a cluster of small
triangles annotated as one region with an uncompressed RLE mask).

Every polygon is exactly the polygon the shape was filled with (COCO coordinates: pixel (0, 0)
covers [0, 1) x [0, 1)); boxes are the polygons' extents and ``area`` the polygon's area; an object
is drawn whole, later objects on top. Layout::

    root/train/000000000001.jpg ...        root/annotations/instances_train.json
    root/val/000000000001.jpg ...          root/annotations/instances_val.json

Image ``i`` of a split depends only on (seed, split, i): adding images leaves the others unchanged.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ..fileio import atomic_write_bytes
from .synthetic import BASE_COLOURS, _texture

# (id, name, shape, texture index of synthetic._texture / colour of BASE_COLOURS)
_CATEGORIES = ((1, 'ellipse', 1), (2, 'rectangle', 2), (3, 'triangle', 3), (5, 'star', 4))
COCO_CLASSES = tuple(name for _, name, _ in _CATEGORIES)
CATEGORY_IDS = tuple(cat_id for cat_id, _, _ in _CATEGORIES)
# Colours the visualiser draws each category in (RGB), for mmdet's ``metainfo``.
COCO_PALETTE = [(255, 0, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]
METAINFO = dict(classes=COCO_CLASSES, palette=COCO_PALETTE)
SPLITS = ('train', 'val')
EMPTY_EVERY, EMPTY_AT = 12, 5  # image i has no object when i % 12 == 5
CROWD_EVERY, CROWD_AT = 24, 7  # training image i has a crowd region when i % 24 == 7
MAX_OCCLUDED = 0.2  # most of an object's area that objects drawn later may cover


def _shape_polygon(shape: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """The outline (N, 2) of a category's shape around (0, 0), randomly rotated and stretched."""
    angle = rng.uniform(0, 2 * np.pi)
    if shape == 0:  # ellipse: 32 vertices
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        points = np.stack([np.cos(t), rng.uniform(0.5, 1.0) * np.sin(t)], axis=1) * radius
    elif shape == 1:  # rectangle
        half = np.array([1.0, rng.uniform(0.4, 1.0)]) * radius
        points = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    elif shape == 2:  # triangle
        t = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
        points = 1.2 * radius * np.stack([np.cos(t), np.sin(t)], axis=1)
    else:  # five-pointed star: 10 vertices, inner radius 0.45
        t = np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.1, 0.5) * radius
        points = np.stack([r * np.cos(t), r * np.sin(t)], axis=1)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return points @ rotation.T


def _place(points: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``points`` moved to a random place where they lie wholly inside the image, rounded to 0.01."""
    low, high = points.min(0), points.max(0)
    offset = np.array([rng.uniform(-low[0], width - high[0]), rng.uniform(-low[1], height - high[1])])
    return np.round(points + offset, 2).clip(0, [width, height])


def _fill(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """The pixels (H, W) bool whose centres the COCO-coordinate ``polygon`` covers."""
    mask = np.zeros((height, width), np.uint8)
    # cv2 puts pixel centres at integers, COCO at half-integers; 4 fractional bits keep the 0.01s.
    cv2.fillPoly(mask, [np.round((polygon - 0.5) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _polygon_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _box(points: np.ndarray) -> List[float]:
    low, high = points.min(0), points.max(0)
    return [round(float(v), 2) for v in (low[0], low[1], high[0] - low[0], high[1] - low[1])]


def rle_encode(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a (H, W) bool mask: run lengths in column-major order, starting
    with a run of zeros (pycocotools reads it with ``frPyObjects``)."""
    flat = np.asarray(mask, bool).flatten(order='F')
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0] + counts
    return {'counts': counts, 'size': [int(mask.shape[0]), int(mask.shape[1])]}


def _objects(height: int, width: int, rng: np.random.Generator, empty: bool,
             crowd: bool) -> Tuple[List[dict], List[Tuple[int, np.ndarray]]]:
    """Annotations (no ids yet) and what to paint: (category index, pixel mask) in drawing order."""
    side = min(height, width)
    annotations, paint, masks = [], [], []
    if crowd:  # a cluster of small triangles in one corner region, one crowd annotation
        centre = np.array([rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height])
        region = np.zeros((height, width), bool)
        for _ in range(rng.integers(6, 11)):
            points = _shape_polygon(2, rng.uniform(0.04, 0.07) * side, rng)
            points = points + centre + rng.uniform(-0.18, 0.18, 2) * side
            points = np.round(points, 2).clip(0, [width, height])
            region |= _fill(points, height, width)
        if region.any():
            ys, xs = np.nonzero(region)
            box = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
            annotations.append(dict(category_id=CATEGORY_IDS[2], bbox=box, area=float(region.sum()), iscrowd=1,
                                    segmentation=rle_encode(region)))
            paint.append((2, region))
            masks.append(region)
    for _ in range(0 if empty else int(rng.integers(1, 5))):
        category = int(rng.integers(len(_CATEGORIES)))
        for _attempt in range(20):
            points = _place(_shape_polygon(category, rng.uniform(0.12, 0.3) * side, rng), height, width, rng)
            mask = _fill(points, height, width)
            # Later objects are drawn on top: each earlier one keeps at least 80 % of its pixels.
            if mask.sum() >= 16 and all((mask & other).sum() <= MAX_OCCLUDED * other.sum() for other in masks):
                break
        else:
            continue
        masks.append(mask)
        paint.append((category, mask))
        annotations.append(dict(category_id=CATEGORY_IDS[category], bbox=_box(points),
                                area=round(_polygon_area(points), 2), iscrowd=0,
                                segmentation=[[float(v) for v in points.flatten()]]))
    return annotations, paint


def render_detection_sample(height: int, width: int, rng: np.random.Generator, empty: bool = False,
                            crowd: bool = False) -> Tuple[np.ndarray, List[dict]]:
    """One image (H, W, 3) uint8 RGB and its COCO annotations (without ``id``/``image_id``)."""
    annotations, paint = _objects(height, width, rng, empty, crowd)
    illumination = rng.uniform(0.8, 1.2)

    def painted(texture_index, mask):
        shade = (np.array(BASE_COLOURS[texture_index], np.float32) + rng.uniform(-20, 20, 3)) * illumination
        return shade * (1.0 + 0.35 * _texture(texture_index, height, width, rng)[mask][:, None])

    image = np.zeros((height, width, 3), np.float32)
    everything = np.ones((height, width), bool)
    image[everything] = painted(0, everything)  # background blotches
    for category, mask in paint:
        image[mask] = painted(_CATEGORIES[category][2], mask)
    image += rng.normal(0, 6, image.shape)
    return image.clip(0, 255).astype(np.uint8), annotations


def make_synthetic_coco(root: str, num_train: int = 48, num_val: int = 12, size: int = 128, seed: int = 0,
                        progress: bool = True) -> Dict[str, Dict[str, int]]:
    """Write the data set under ``root``; returns per split the number of images, annotations,
    images without annotations and crowd regions."""
    if size < 32:
        raise ValueError(f'size {size} is below 32, the total stride of GFNet-H')
    counts = {'train': num_train, 'val': num_val}
    summary = {}
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split_index, split in enumerate(SPLITS):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for index in tqdm(range(counts[split]), desc=f'writing {root}/{split}', disable=not progress):
            rng = np.random.default_rng([seed, split_index, index])
            height, width = (int(rng.integers(size * 3 // 4, size * 5 // 4 + 1)) for _ in range(2))
            empty = index % EMPTY_EVERY == EMPTY_AT
            crowd = split == 'train' and index % CROWD_EVERY == CROWD_AT
            image, objects = render_detection_sample(height, width, rng, empty, crowd)
            image_id = index + 1
            file_name = f'{image_id:012d}.jpg'
            cv2.imwrite(osp.join(root, split, file_name), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
            images.append(dict(id=image_id, file_name=file_name, height=height, width=width))
            for obj in objects:
                annotations.append(dict(id=len(annotations) + 1, image_id=image_id, **obj))
        dataset = dict(info=dict(description=f'synthetic COCO-layout shapes, seed {seed}', version='1.0'),
                       licenses=[], images=images, annotations=annotations,
                       categories=[dict(id=cat_id, name=name, supercategory='shape')
                                   for cat_id, name, _ in _CATEGORIES])
        atomic_write_bytes(osp.join(root, 'annotations', f'instances_{split}.json'), json.dumps(dataset).encode())
        with_objects = {ann['image_id'] for ann in annotations}
        summary[split] = dict(images=len(images), annotations=len(annotations),
                              empty_images=len(images) - len(with_objects),
                              crowd=sum(ann['iscrowd'] for ann in annotations))
    return summary
