"""Every config under configs/ (bases excepted) builds, runs, and agrees with its own file name.

The list is globbed, so a new config is tested without touching this file.
"""
import copy
import functools
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

from gfnet_seg import ARCH_SETTINGS

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(path for path in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in path.split(osp.sep))
# mmseg 1.x: {head}_{backbone}_{gpus}xb{batch}-{iters}_{dataset}-{crop}.py
NAME = re.compile(r'(?P<head>[a-z0-9]+)_(?P<backbone>[a-z0-9-]+)_(?P<gpus>\d+)xb(?P<batch>\d+)-'
                  r'(?P<iters>\d+k?)_(?P<dataset>[a-z0-9]+)-(?P<height>\d+)x(?P<width>\d+)\.py')


def config_id(path):
    return osp.relpath(path, osp.join(REPO_ROOT, 'configs'))


@functools.lru_cache(maxsize=None)
def _read(path):
    cfg = Config.fromfile(path)  # about a second: resolves the mmseg:: bases
    cfg.model.backbone.init_cfg = None  # no ImageNet checkpoint exists offline
    return cfg


def load(path):
    return copy.deepcopy(_read(path))


def as_pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def test_configs_found():
    assert len(CONFIGS) >= 10, CONFIGS


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_name_matches_settings(path):
    match = NAME.fullmatch(osp.basename(path))
    assert match, f'{osp.basename(path)} does not follow {NAME.pattern}'
    cfg = load(path)
    iters = int(match['iters'].rstrip('k')) * (1000 if match['iters'].endswith('k') else 1)
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_dataloader.batch_size == int(match['batch'])
    assert as_pair(cfg.crop_size) == (int(match['height']), int(match['width']))
    assert match['backbone'] == 'gfnet-' + cfg.model.backbone.arch
    assert cfg.model.decode_head.type.lower() == match['head'] + 'head'
    assert match['dataset'] in cfg.train_dataloader.dataset.type.lower()


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_parts_agree(path):
    """Sizes the config states in several places must be the same value."""
    cfg = load(path)
    crop = as_pair(cfg.crop_size)
    assert as_pair(cfg.model.backbone.img_size) == crop  # filters are built for the training crop
    assert as_pair(cfg.model.data_preprocessor.size) == crop
    random_crop = [t for t in cfg.train_pipeline if t.type == 'RandomCrop']
    assert [as_pair(t.crop_size) for t in random_crop] == [crop]
    assert cfg.model.neck.in_channels == list(ARCH_SETTINGS[cfg.model.backbone.arch]['embed_dims'])
    classes = DATASETS.get(cfg.train_dataloader.dataset.type).METAINFO['classes']
    assert cfg.model.decode_head.num_classes == len(classes)
    assert cfg.test_dataloader.dataset.type == cfg.train_dataloader.dataset.type
    assert [s.end for s in cfg.param_scheduler] == [cfg.train_cfg.max_iters]  # decays to the last iteration
    assert cfg.model.test_cfg.mode == 'whole'


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_model_builds_and_runs(path):
    cfg = load(path)
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    model.init_weights()
    num_classes = cfg.model.decode_head.num_classes
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 64, 96), mode='tensor')
    assert logits.shape == (1, num_classes, 16, 24)  # the FPN head predicts at stride 4
    assert torch.isfinite(logits).all()


def test_whole_image_inference_at_odd_size():
    """Test images are resized keeping their ratio, so their sizes are anything (here neither a
    multiple of 32 nor square); the prediction covers every input pixel."""
    cfg = load(osp.join(REPO_ROOT, 'configs/sem_fpn/fpn_gfnet-h-ti_1xb2-300_synthetic-128x128.py'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    height, width = 75, 109
    sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width)))
    batch = dict(inputs=[torch.randint(0, 256, (3, height, width), dtype=torch.uint8)], data_samples=[sample])
    with torch.no_grad():
        result, = model.test_step(batch)
    assert result.pred_sem_seg.data.shape == (1, height, width)
    assert result.seg_logits.data.shape == (cfg.model.decode_head.num_classes, height, width)
