"""tools/test.py --tta: mmseg's multi-scale (0.5 to 1.75) and flip test on a GFNet-H config, on the
synthetic data set and the model trained for the tool tests."""
import collections
import glob
import os.path as osp

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS, MODELS

from gfnet_seg.analysis.config_table import read_config
from gfnet_seg.apis import load_config, setup_test
from gfnet_seg.datasets import CLASSES
from gfnet_seg.models import global_filter

from tool_utils import (CONFIG, REPO_ROOT, TINY_MODEL, annotation_dir, as_flags, data_options, dumped_metrics,
                        miou_of_maps, run_tool)

UPERNET_ADE = 'configs/upernet/upernet_gfnet-h-ti_8xb2-160k_ade20k-512x512.py'
RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
# mmseg's ADE20K base (which the synthetic config inherits) scales the original image by r; the
# synthetic config tests at twice the original size (64 -> 128 pixels high). Factors 2r make the
# TTA scales what the UperNet configs use: the single-scale test size times r.
TTA_SCALES = {f'tta_pipeline.1.transforms.0.{i}.scale_factor': 2 * r for i, r in enumerate(RATIOS)}


@pytest.fixture(scope='module')
def tta_tested(tmp_path_factory, synthetic_root, trained):
    root = tmp_path_factory.mktemp('tta')
    run_tool('test.py', CONFIG, trained.checkpoint, '--tta', '--work-dir', root / 'work', '--out', root / 'maps',
             *as_flags({**TINY_MODEL, **data_options(synthetic_root), **TTA_SCALES}))
    return dumped_metrics(root / 'work'), root / 'maps'


def test_tta_reports_the_miou_of_its_maps(synthetic_root, tta_tested):
    metrics, maps = tta_tested
    gt_dir = annotation_dir(synthetic_root)
    assert len(glob.glob(osp.join(str(maps), '*.png'))) == len(glob.glob(osp.join(gt_dir, '*.png')))
    assert abs(miou_of_maps(str(maps), gt_dir, len(CLASSES)) - metrics['mIoU']) < 0.01


def test_tta_is_not_worse_than_single_scale(tested, tta_tested):
    metrics, _ = tta_tested
    assert metrics['mIoU'] >= tested.metrics['mIoU'] - 1.0, (metrics, tested.metrics)


def test_filters_resized_once_per_scale(monkeypatch, synthetic_root, trained):
    """All twelve views of one image through the model as ``--tta`` runs them: every filter is
    resized once for each scale whose token grid differs from the one it was built for, and the
    flipped view of a scale reuses it (the eval-mode cache)."""
    cfg = load_config(osp.join(REPO_ROOT, CONFIG), {**TINY_MODEL, **data_options(synthetic_root), **TTA_SCALES})
    cfg = setup_test(cfg, str(trained.checkpoint), tta=True)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model).eval()
        views = DATASETS.build(cfg.test_dataloader.dataset)[0]
    sizes = {tuple(view.shape[-2:]) for view in views['inputs']}
    assert len(views['inputs']) == 2 * len(RATIOS) and len(sizes) == len(RATIOS)

    resized = collections.Counter()
    resize = global_filter.resize_filter

    def counting_resize(weight, size):
        resized[weight.data_ptr(), tuple(size)] += 1
        return resize(weight, size)

    monkeypatch.setattr(global_filter, 'resize_filter', counting_resize)
    with torch.no_grad():  # as mmengine's TestLoop runs it
        result, = model.test_step(pseudo_collate([views]))
    assert result.pred_sem_seg.data.shape[-2:] == result.gt_sem_seg.data.shape[-2:]
    filters = [m.complex_weight for m in model.modules() if isinstance(m, global_filter.GlobalFilter)]
    assert set(resized.values()) == {1}  # no filter resized twice for one size
    for weight in filters:
        built = tuple(weight.shape[:2])
        sizes_of_weight = {size for ptr, size in resized if ptr == weight.data_ptr()}
        assert built not in sizes_of_weight and len(sizes_of_weight) >= len(RATIOS) - 1


def test_upernet_tta_scales_are_the_test_size_times_r(synthetic_root):
    """The UperNet ADE20K configs' TTA views: the single-scale test image scaled by each r (as
    mmseg 0.x's (2048, 512) x r), each also mirrored."""
    cfg = read_config(osp.join(REPO_ROOT, UPERNET_ADE))
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.update(data_root=str(synthetic_root), serialize_data=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        single = DATASETS.build({**dataset_cfg, 'pipeline': cfg.test_pipeline})[0]['inputs']
        views = DATASETS.build({**dataset_cfg, 'pipeline': cfg.tta_pipeline})[0]['inputs']
    height, width = single.shape[-2:]
    assert min(height, width) == 512  # ADE20K's test size, short side 512
    assert len(views) == 2 * len(RATIOS)
    for r, plain, flipped in zip(RATIOS, views[0::2], views[1::2]):
        assert abs(plain.shape[-2] - r * height) <= 1 and abs(plain.shape[-1] - r * width) <= 1, (r, plain.shape)
        assert torch.equal(flipped, plain.flip(-1))
