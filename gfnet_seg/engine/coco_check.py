"""Find mistakes in a COCO-format detection data set before training, each reported in one line.

The detection counterpart of ``data_check.py``: ``check_coco_annotations`` reads an annotation file
and the images it names and raises ``DataCheckError`` at the first problem, naming the file and the
record (image id, annotation id, file name): JSON that does not parse (with its line and column),
missing top-level keys, image records without id/file_name/height/width, duplicate ids, missing
image files and files that do not decode at the size the record declares (decoded as mmdet's
``LoadImageFromFile`` does: OpenCV, 3-channel colour, EXIF orientation applied), annotations of
unknown images or categories, boxes that are not 4 numbers, of negative size or outside the image,
polygons of fewer than 3 points or outside the image (1 pixel of tolerance), RLE masks of another
size than their image, and, given the classes of a config, class names that are not categories of
the file or come in another order (mmdet numbers labels in the file's order and drops the rest).

Accepted, as COCO has them: crowd regions (``iscrowd=1``, RLE or polygons), images without
annotations, annotations without ``segmentation`` (boxes only), and boxes of zero width or height
whose ``area`` is 0 (COCO train2017 has two, annotation ids 918 and 2206849; mmdet skips them).

It needs neither mmseg nor mmdet. ``CocoDataCheckHook``, registered in mmdet's ``HOOKS`` when mmdet
is installed, runs it on the train and val sets in ``before_train`` and on the test set in
``before_test``.
"""
import json
import numbers
import os.path as osp
import sys
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np

from ..fileio import first_problem

try:  # the segmentation check's error class and dataset unwrapping, where mmseg is installed
    from .data_check import DataCheckError, _built_leaf_datasets
except ModuleNotFoundError as _err:  # no mmseg (data_check imports it): the same, for detection-only installs
    if not (_err.name or '').startswith('mmseg'):
        raise
    class DataCheckError(ValueError):
        """A data set problem, found before training."""

    def _built_leaf_datasets(dataset):
        for attr in ('datasets', 'dataset'):
            inner = getattr(dataset, attr, None)
            if inner is not None:
                for child in (inner if isinstance(inner, (list, tuple)) else [inner]):
                    yield from _built_leaf_datasets(child)
                return
        yield dataset

TOLERANCE = 1.0  # pixels a box or polygon may reach past the image border
TOP_LEVEL_KEYS = ('images', 'annotations', 'categories')


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)


def _image_record_problem(image) -> str:
    if not isinstance(image, dict):
        return f'image record {str(image)[:60]} is not an object'
    missing = [key for key in ('id', 'file_name', 'height', 'width') if key not in image]
    if missing:
        return f'image id {image.get("id")} has no {", ".join(missing)}'
    if not all(isinstance(image[key], int) and image[key] > 0 for key in ('height', 'width')):
        return (f'image id {image["id"]} ({image["file_name"]}): height {image["height"]!r} and width '
                f'{image["width"]!r} must be positive integers')
    return ''


def _annotation_problem(ann: dict, image: dict) -> str:
    """What is wrong with one annotation of a known image and category, or ''."""
    height, width = image['height'], image['width']
    bbox = ann.get('bbox')
    if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        return f'box {bbox!r} is not 4 numbers [x, y, width, height]'
    x, y, w, h = bbox
    area = ann.get('area', 0)
    if w < 0 or h < 0 or ((w == 0 or h == 0) and _is_number(area) and area > 0):
        return (f'box {bbox} has {"negative" if min(w, h) < 0 else "zero"} width or height '
                f'(COCO boxes are [x, y, width, height], not corners)')
    if x < -TOLERANCE or y < -TOLERANCE or x + w > width + TOLERANCE or y + h > height + TOLERANCE:
        return f'box {bbox} [x, y, width, height] reaches outside the {width}x{height} image'
    segmentation = ann.get('segmentation')
    if isinstance(segmentation, dict):  # RLE, compressed or not
        size = segmentation.get('size')
        if 'counts' not in segmentation or not isinstance(size, (list, tuple)) or len(size) != 2:
            return 'RLE segmentation has no counts or no size [height, width]'
        if list(size) != [height, width]:
            return f'RLE segmentation is of size {list(size)} [height, width], its image {[height, width]}'
    elif isinstance(segmentation, (list, tuple)):
        for index, polygon in enumerate(segmentation):
            if not (isinstance(polygon, (list, tuple)) and all(_is_number(v) for v in polygon)):
                return f'polygon {index} is not a list of numbers [x1, y1, x2, y2, ...]'
            if len(polygon) % 2:
                return f'polygon {index} has an odd number of coordinates ({len(polygon)})'
            if len(polygon) < 6:
                return f'polygon {index} has {len(polygon) // 2} points, fewer than 3'
            xs, ys = np.asarray(polygon[0::2], float), np.asarray(polygon[1::2], float)
            if (xs.min() < -TOLERANCE or ys.min() < -TOLERANCE or xs.max() > width + TOLERANCE
                    or ys.max() > height + TOLERANCE):
                return (f'polygon {index} reaches outside the {width}x{height} image (x {xs.min():g} to '
                        f'{xs.max():g}, y {ys.min():g} to {ys.max():g})')
    elif segmentation is not None:
        return f'segmentation is neither polygons nor RLE: {str(segmentation)[:60]}'
    return ''


def _image_file_problem(image: dict, img_prefix: str) -> str:
    path = osp.join(img_prefix, image['file_name'])
    record = f'image id {image["id"]} ({image["file_name"]})'
    if not osp.isfile(path):
        return f'{record}: image file {path} does not exist'
    try:
        with open(path, 'rb') as f:
            decoded = mmcv.imfrombytes(f.read(), flag='color', backend='cv2')
    except Exception:  # decoders raise many types for bad files
        decoded = None
    if decoded is None:
        return f'{record}: corrupt or unreadable image file {path}'
    if decoded.shape[:2] != (image['height'], image['width']):
        return (f'{record}: image file {path} is {decoded.shape[1]}x{decoded.shape[0]} (width x height, '
                f'after any EXIF rotation), the annotation file says {image["width"]}x{image["height"]}')
    return ''


def _structure_problem(data, classes: Optional[Sequence[str]]) -> Tuple[str, list]:
    """The first problem of the parsed file short of reading images, and the image records."""
    if not isinstance(data, dict):
        return 'is not a JSON object with images, annotations and categories', []
    missing = [key for key in TOP_LEVEL_KEYS if key not in data]
    if missing:
        return f'has no top-level {", ".join(repr(k) for k in missing)} (a COCO file has {TOP_LEVEL_KEYS})', []
    if not all(isinstance(data[key], list) for key in TOP_LEVEL_KEYS):
        return 'images, annotations and categories must be lists', []
    categories = {}
    for cat in data['categories']:
        if not isinstance(cat, dict) or 'id' not in cat or 'name' not in cat:
            return f'category {str(cat)[:60]} has no id or no name', []
        if cat['id'] in categories:
            return f'category id {cat["id"]} appears twice', []
        categories[cat['id']] = cat['name']
    images = {}
    for image in data['images']:
        problem = _image_record_problem(image)
        if problem:
            return problem, []
        if image['id'] in images:
            return f'image id {image["id"]} ({image["file_name"]}) appears twice', []
        images[image['id']] = image
    seen = set()
    for ann in data['annotations']:
        if not isinstance(ann, dict) or 'id' not in ann:
            return f'annotation {str(ann)[:60]} has no id', []
        record = f'annotation id {ann["id"]}'
        if ann['id'] in seen:
            return f'{record} appears twice', []
        seen.add(ann['id'])
        image = images.get(ann.get('image_id'))
        if image is None:
            return f'{record}: image id {ann.get("image_id")!r} is not among the images', []
        record += f' (image id {image["id"]}, {image["file_name"]})'
        if ann.get('category_id') not in categories:
            return (f'{record}: category id {ann.get("category_id")!r} is not among the categories '
                    f'{sorted(categories)}'), []
        problem = _annotation_problem(ann, image)
        if problem:
            return f'{record}: {problem}', []
    if classes is not None:
        names = list(categories.values())
        unknown = [name for name in classes if name not in names]
        if unknown:
            return f'has no categories named {unknown} (the classes of the config; its categories: {names})', []
        in_file_order = [name for name in names if name in classes]
        if in_file_order != list(classes):
            return (f'lists the classes in the order {in_file_order}, the config in {list(classes)}: mmdet '
                    'numbers labels in the file\'s order, so the names would go to the wrong labels'), []
    return '', list(images.values())


def _check(ann_file: str, img_prefix: str, classes: Optional[Sequence[str]] = None, workers: int = 4,
           rank: int = 0, world_size: int = 1) -> Tuple[int, int]:
    """``check_coco_annotations``; returns (images read by this process, annotations)."""
    try:
        with open(ann_file, 'rb') as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise DataCheckError(f'annotation file {ann_file} does not exist; see data/README.md for where '
                             'data sets go') from None
    except json.JSONDecodeError as err:
        raise DataCheckError(f'{ann_file}: malformed JSON at line {err.lineno} column {err.colno}: '
                             f'{err.msg}') from None
    except UnicodeDecodeError as err:
        raise DataCheckError(f'{ann_file}: not UTF-8 text ({err.reason} at byte {err.start})') from None
    problem, images = _structure_problem(data, classes)
    if problem:
        raise DataCheckError(f'{ann_file}: {problem}')
    images = images[rank::world_size]
    problem = first_problem(lambda image: _image_file_problem(image, img_prefix), images,
                            f'checking {osp.basename(ann_file)}', workers, progress=len(images) >= 200)
    if problem:
        raise DataCheckError(f'{ann_file}: {problem}')
    return len(images), len(data['annotations'])


def check_coco_annotations(ann_file: str, img_prefix: str, classes: Optional[Sequence[str]] = None,
                           workers: int = 4, rank: int = 0, world_size: int = 1) -> None:
    """Raise ``DataCheckError``, one line naming ``ann_file`` and the record, at the first problem of
    a COCO annotation file and the images under ``img_prefix`` (see the module docstring).

    ``classes``: the names a config gives mmdet (``metainfo['classes']``); each must be a category
    of the file, in the file's order. Process ``rank`` of ``world_size`` reads every
    ``world_size``-th image; the annotation file is checked whole by every process.
    """
    _check(ann_file, img_prefix, classes, workers, rank, world_size)


try:
    from mmdet.registry import HOOKS
except ModuleNotFoundError as _err:  # no mmdet: the check above works, the hook is not defined
    # ('mmdet.registry' when mmdet is blocked with sys.modules['mmdet'] = None; another missing
    # module is a broken install: raise, as models/backbones/gfnet_h.py does)
    if _err.name not in ('mmdet', 'mmdet.registry') or (_err.name != 'mmdet' and sys.modules.get('mmdet')):
        raise
    HOOKS = None

if HOOKS is not None:
    from mmengine.dist import get_dist_info
    from mmengine.hooks import Hook
    from mmengine.logging import print_log

    @HOOKS.register_module()
    class CocoDataCheckHook(Hook):
        """Check mmdet's COCO-format train and val sets (annotation file and every image) before the
        first iteration, and the test set before evaluation; wrapped datasets (ConcatDataset,
        RepeatDataset, ClassBalancedDataset, ...) are unwrapped. Datasets without ``ann_file`` are
        skipped."""

        priority = 'VERY_HIGH'

        def before_train(self, runner) -> None:
            loaders = [('train', runner.train_dataloader)]
            if runner.val_loop is not None:
                loaders.append(('val', runner.val_dataloader))
            self._check(loaders)

        def before_test(self, runner) -> None:
            self._check([('test', runner.test_dataloader)])

        @staticmethod
        def _check(loaders) -> None:
            rank, world_size = get_dist_info()
            for name, loader in loaders:
                for dataset in _built_leaf_datasets(loader.dataset):
                    ann_file = getattr(dataset, 'ann_file', None)
                    if not ann_file:
                        continue
                    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
                    try:
                        count, annotations = _check(ann_file, dataset.data_prefix.get('img', ''), classes,
                                                    rank=rank, world_size=world_size)
                    except DataCheckError as err:
                        raise DataCheckError(f'{name} set: {err}') from None
                    share = ' (this process\'s share)' if world_size > 1 else ''
                    print_log(f'data check: {count} {name} images{share} and {annotations} annotations of '
                              f'{ann_file} are sound', logger='current')
