"""Find data set mistakes before training starts, each reported in one line naming the file.

``check_data_config`` runs on the config, before anything is built: a missing or empty image or
annotation folder. ``check_segmentation_dataset`` runs on a built mmseg dataset: images without
annotations and the reverse, unreadable images, label values outside the classes that are not
the ignore index. ``SegDataCheckHook`` runs the latter on the train and val sets in
``before_train`` (each process of a distributed run reading its share), so that a bad file stops
the run in minutes, not in the middle of an epoch.
"""
import os
import os.path as osp
from typing import Iterator, Sequence, Tuple

import cv2
import numpy as np
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
    """Raise ``DataCheckError`` if an image or annotation folder of ``loaders`` is missing or empty."""
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for dataset in _leaf_datasets(cfg[loader]['dataset']):
            root = dataset.get('data_root') or ''
            for role, key in (('image', 'img_path'), ('annotation', 'seg_map_path')):
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


def _allowed_labels(dataset) -> np.ndarray:
    """Raw annotation values that are valid for ``dataset`` (classes and the ignore index)."""
    num_classes = len(dataset.metainfo['classes'])
    # reduce_zero_label shifts values down by one and turns 0 into the ignore index.
    allowed = set(range(num_classes + 1 if dataset.reduce_zero_label else num_classes))
    allowed |= set((dataset.label_map or {}).keys())
    allowed.add(dataset.ignore_index)
    return np.array(sorted(allowed))


def _check_pair(item: Tuple[str, str], allowed: np.ndarray) -> str:
    """The problem with one image/annotation pair, or '' when there is none."""
    img_path, seg_path = item
    if cv2.imread(img_path, cv2.IMREAD_UNCHANGED) is None:
        return f'corrupt or unreadable image file {img_path}'
    if seg_path is None:
        return ''
    if not osp.isfile(seg_path):
        return f'image {img_path} has no annotation: {seg_path} does not exist'
    label = cv2.imread(seg_path, cv2.IMREAD_UNCHANGED)
    if label is None:
        return f'corrupt or unreadable annotation file {seg_path}'
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
    allowed = _allowed_labels(dataset)
    items = items[rank::world_size]
    problem = first_problem(lambda item: _check_pair(item, allowed), items, f'checking {name}', workers,
                            progress=len(items) >= 200)
    if problem:
        raise DataCheckError(f'{name}: {problem}')
    return len(items)


@HOOKS.register_module()
class SegDataCheckHook(Hook):
    """Check the train and val data sets file by file before the first iteration."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loaders = [('train', runner.train_dataloader)]
        if runner.val_loop is not None:
            loaders.append(('val', runner.val_dataloader))
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
