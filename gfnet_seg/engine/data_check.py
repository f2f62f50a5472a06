"""Find data set mistakes before training starts, each reported in one line naming the file.

``check_data_config`` runs on the config, before anything is built: a missing or empty image or
annotation folder. ``check_segmentation_dataset`` runs on a built mmseg dataset: images without
annotations and the reverse, unreadable images, annotations that are colour maps instead of
class indices, annotations whose size differs from their image's, label values outside the
classes that are not the ignore index. ``SegDataCheckHook`` runs the latter on the train and val
sets in ``before_train`` and on the test set in ``before_test`` (each process of a distributed run
reading its share), so that a bad file stops the run in minutes, not in the middle of an epoch or
of an evaluation.

Files are decoded as the dataset's pipeline decodes them (its ``LoadImageFromFile`` and
``LoadAnnotations`` settings; mmseg's defaults otherwise): images with OpenCV as 3-channel colour,
so grayscale, RGBA, 16-bit and CMYK files load as 3 channels and a JPEG's EXIF orientation is
applied; annotations with Pillow unchanged, so a palette PNG gives its indices. The annotation
must therefore match the image as it is displayed, after its EXIF rotation.
"""
import os
import os.path as osp
from typing import Callable, Iterator, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine import fileio
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ..fileio import first_problem

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class DataCheckError(ValueError):
    """A data set problem, found before training."""


def _leaf_datasets(dataset_cfg) -> Iterator[dict]:
    """The dataset configs inside wrappers (RepeatDataset, ConcatDataset, ...)."""
    if 'datasets' in dataset_cfg:
        for inner in dataset_cfg['datasets']:
            yield from _leaf_datasets(inner)
    elif 'dataset' in dataset_cfg:
        yield from _leaf_datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def check_data_config(cfg, loaders: Sequence[str] = DATALOADERS) -> None:
    """Raise ``DataCheckError`` if an image or annotation folder of ``loaders`` is missing or empty,
    or an annotation file (``ann_file``, COCO's JSON) is missing. Segmentation data sets name their
    folders ``img_path``/``seg_map_path``, mmdet's ``img``."""
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for dataset in _leaf_datasets(cfg[loader]['dataset']):
            root = dataset.get('data_root') or ''
            for role, key in (('image', 'img_path'), ('image', 'img'), ('annotation', 'seg_map_path')):
                sub = (dataset.get('data_prefix') or {}).get(key)
                if sub is None:
                    continue
                folder = osp.join(root, sub)
                if not osp.isdir(folder):
                    raise DataCheckError(
                        f'{loader}: {role} folder {folder} does not exist (data_root={root!r}); '
                        'see data/README.md for where data sets go')
                if not any(True for _ in os.scandir(folder)):
                    raise DataCheckError(f'{loader}: {role} folder {folder} is empty')
            ann_file = dataset.get('ann_file')
            if ann_file and not osp.isfile(osp.join(root, ann_file)):
                raise DataCheckError(f'{loader}: annotation file {osp.join(root, ann_file)} does not exist '
                                     f'(data_root={root!r}); see data/README.md for where data sets go')


def _allowed_labels(dataset) -> np.ndarray:
    """Raw annotation values that are valid for ``dataset`` (classes and the ignore index)."""
    num_classes = len(dataset.metainfo['classes'])
    # reduce_zero_label shifts values down by one and turns 0 into the ignore index.
    allowed = set(range(num_classes + 1 if dataset.reduce_zero_label else num_classes))
    allowed |= set((dataset.label_map or {}).keys())
    allowed.add(dataset.ignore_index)
    return np.array(sorted(allowed))


Decoder = Callable[[str], Optional[np.ndarray]]


def _pipeline_decoders(dataset) -> Tuple[Decoder, Decoder]:
    """Read an image and an annotation as the dataset's pipeline does: ``mmcv.imfrombytes`` with
    its ``LoadImageFromFile`` colour type and decoder, and its ``LoadAnnotations`` decoder, the
    annotation left unchanged (no cast), so that values above 255 and extra channels show."""
    image_cfg = dict(color_type='color', imdecode_backend='cv2', backend_args=None)
    label_cfg = dict(imdecode_backend='pillow', backend_args=None)
    for transform in getattr(dataset.pipeline, 'transforms', []):
        name = type(transform).__name__
        cfg = image_cfg if name == 'LoadImageFromFile' else label_cfg if name == 'LoadAnnotations' else None
        for key in cfg or ():
            cfg[key] = getattr(transform, key, cfg[key])

    def decode(path, flag, backend, backend_args):
        try:
            return mmcv.imfrombytes(fileio.get(path, backend_args=backend_args), flag=flag, backend=backend)
        except Exception:  # decoders raise many types for bad files
            return None

    return (lambda path: decode(path, image_cfg['color_type'], image_cfg['imdecode_backend'], image_cfg['backend_args']),
            lambda path: decode(path, 'unchanged', label_cfg['imdecode_backend'], label_cfg['backend_args']))


def _size(array: np.ndarray) -> str:
    return f'{array.shape[1]}x{array.shape[0]}'


def _check_pair(item: Tuple[str, str], allowed: np.ndarray, decoders: Tuple[Decoder, Decoder]) -> str:
    """The problem with one image/annotation pair, or '' when there is none."""
    img_path, seg_path = item
    read_image, read_label = decoders
    image = read_image(img_path)
    if image is None:
        return f'corrupt or unreadable image file {img_path}'
    if image.ndim != 3 or image.shape[2] != 3:
        channels = 1 if image.ndim == 2 else image.shape[2]
        return (f'image {img_path} loads with {channels} channels, the model takes 3: load images with '
                "LoadImageFromFile's color_type='color'")
    if seg_path is None:
        return ''
    if not osp.isfile(seg_path):
        return f'image {img_path} has no annotation: {seg_path} does not exist'
    label = read_label(seg_path)
    if label is None:
        return f'corrupt or unreadable annotation file {seg_path}'
    if label.ndim == 3 and label.shape[2] == 1:
        label = label[..., 0]
    if label.ndim != 2:
        return (f'annotation {seg_path} has {label.shape[2]} channels: labels must be single-channel class '
                'indices (a grayscale or palette PNG), not an RGB colour map; convert the colours to indices')
    if label.shape != image.shape[:2]:
        return (f'annotation {seg_path} is {_size(label)} (width x height) but its image {img_path} is '
                f'{_size(image)} as loaded (after any EXIF rotation): they must match pixel for pixel')
    bad = np.setdiff1d(np.unique(label), allowed)
    if bad.size:
        return (f'annotation {seg_path} has label values {bad[:8].tolist()} outside the '
                f'{len(allowed) - 1} valid values (classes and the ignore index)')
    return ''


def check_segmentation_dataset(dataset, name: str = 'dataset', workers: int = 4, rank: int = 0,
                               world_size: int = 1) -> int:
    """Check the samples of a built mmseg dataset; raise ``DataCheckError`` naming the first bad
    file. Process ``rank`` of ``world_size`` reads every ``world_size``-th sample, so that the
    processes of a distributed run share the reading. Returns the number of samples read."""
    infos = (dataset.get_data_info(i) for i in range(len(dataset)))
    items = [(info['img_path'], info.get('seg_map_path')) for info in infos]
    img_dir = dataset.data_prefix.get('img_path')
    if not items:
        raise DataCheckError(f'{name}: no images with suffix {dataset.img_suffix!r} in {img_dir}')
    ann_dir = dataset.data_prefix.get('seg_map_path')
    if ann_dir:
        expected = {osp.relpath(seg, ann_dir) for _, seg in items}
        for root, _, files in os.walk(ann_dir):
            for file in sorted(files):
                rel = osp.relpath(osp.join(root, file), ann_dir)
                if file.endswith(dataset.seg_map_suffix) and rel not in expected:
                    raise DataCheckError(f'{name}: annotation {osp.join(ann_dir, rel)} has no image '
                                         f'(expected one with suffix {dataset.img_suffix!r} in {img_dir})')
    allowed, decoders = _allowed_labels(dataset), _pipeline_decoders(dataset)
    items = items[rank::world_size]
    problem = first_problem(lambda item: _check_pair(item, allowed, decoders), items, f'checking {name}', workers,
                            progress=len(items) >= 200)
    if problem:
        raise DataCheckError(f'{name}: {problem}')
    return len(items)


@HOOKS.register_module()
class SegDataCheckHook(Hook):
    """Check the train and val data sets file by file before the first iteration, and the test
    set before evaluation (``tools/test.py``, ``tools/dist_test.sh``)."""

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
                count = check_segmentation_dataset(dataset, f'{name} set', rank=rank, world_size=world_size)
                share = f' (this process\'s share of {len(dataset)})' if world_size > 1 else ''
                print_log(f'data check: {count} {name} samples in {dataset.data_root or "."} are '
                          f'sound{share}', logger='current')


def _built_leaf_datasets(dataset):
    for attr in ('datasets', 'dataset'):
        inner = getattr(dataset, attr, None)
        if inner is not None:
            for child in (inner if isinstance(inner, (list, tuple)) else [inner]):
                yield from _built_leaf_datasets(child)
            return
    yield dataset
