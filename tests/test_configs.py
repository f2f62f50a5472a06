"""Every config under configs/ (bases excepted) builds, trains, infers, and agrees with its own file name.

The list is globbed, so a new config is tested without touching this file.
"""
import glob
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

from gfnet_seg import ARCH_SETTINGS
from gfnet_seg.analysis.config_table import read_config
from gfnet_seg.models.gfnet import Block

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# detection configs (mmdet scope) are tested by tests/test_configs_detection.py
CONFIGS = sorted(path for path in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True)
                 if not {'_base_', 'retinanet', 'mask_rcnn'} & set(path.split(osp.sep)))
UPERNET_ADE = osp.join(REPO_ROOT, 'configs/upernet/upernet_gfnet-h-ti_8xb2-160k_ade20k-512x512.py')
# mmseg 1.x: {head}_{backbone}_{gpus}xb{batch}-{iters}_{dataset}-{crop}.py
NAME = re.compile(r'(?P<head>[a-z0-9]+)_(?P<backbone>[a-z0-9-]+)_(?P<gpus>\d+)xb(?P<batch>\d+)-'
                  r'(?P<iters>\d+k?)_(?P<dataset>[a-z0-9]+)-(?P<height>\d+)x(?P<width>\d+)\.py')
# The head named in a file name and the decode head it stands for.
HEADS = {'fpn': 'FPNHead', 'upernet': 'UPerHead'}


def config_id(path):
    return osp.relpath(path, osp.join(REPO_ROOT, 'configs'))


def load(path):
    """The config without its ImageNet checkpoint (none exists offline), read once per file for
    the whole test session (the config table reads the same files)."""
    return read_config(path)


def as_pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


def build(cfg):
    """The segmentor with SyncBN as BN (no process group on the test machine), initialised."""
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    return model


def batch(height, width, num_classes, size=2, seed=0):
    """A data batch as the data loader hands it to ``train_step``/``test_step``: uint8 images and
    label maps (with some pixels ignored)."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(size):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=gen))
        labels = torch.randint(0, num_classes, (1, height, width), generator=gen)
        labels[:, :4] = 255
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=labels),
                                     metainfo=dict(img_shape=(height, width), ori_shape=(height, width))))
    return dict(inputs=inputs, data_samples=samples)


def test_configs_found():
    assert len(CONFIGS) >= 16, CONFIGS
    assert {NAME.fullmatch(osp.basename(p))['head'] for p in CONFIGS} == set(HEADS)


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
    assert cfg.model.decode_head.type == HEADS[match['head']]
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
    embed_dims = list(ARCH_SETTINGS[cfg.model.backbone.arch]['embed_dims'])
    reads_backbone = cfg.model.get('neck') or cfg.model.decode_head  # FPN: the neck; UperNet: the head
    assert reads_backbone.in_channels == embed_dims
    classes = DATASETS.get(cfg.train_dataloader.dataset.type).METAINFO['classes']
    heads = [cfg.model.decode_head] + ([cfg.model.auxiliary_head] if cfg.model.get('auxiliary_head') else [])
    assert [head.num_classes for head in heads] == [len(classes)] * len(heads)
    if len(heads) > 1:
        assert heads[1].in_channels == embed_dims[heads[1].in_index]
    assert cfg.test_dataloader.dataset.type == cfg.train_dataloader.dataset.type
    # the schedulers follow one another from iteration 0, the last decays to the last iteration
    bounds = [(s.begin, s.end) for s in cfg.param_scheduler]
    assert [b for b, _ in bounds] == [0] + [e for _, e in bounds[:-1]], bounds
    assert bounds[-1][1] == cfg.train_cfg.max_iters
    assert cfg.model.test_cfg.mode == 'whole'
    assert cfg.tta_model.type == 'SegTTAModel' and cfg.tta_pipeline  # tools/test.py --tta


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_runs_are_safe_to_kill_and_resume(path):
    """Every config carries the reliability settings of gfnet_seg/engine (see default_runtime.py)."""
    cfg = load(path)
    assert [hook['type'] for hook in cfg.custom_hooks] == ['SegDataCheckHook', 'IterationSeedHook',
                                                            'StopOnInvalidLossHook']
    assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook'
    assert cfg.default_hooks.checkpoint.backend_args == dict(backend='atomic_local')
    assert cfg.randomness.seed is not None


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_model_trains_and_infers(path):
    """One training iteration with the config's heads, losses and optimiser (every loss finite,
    every weight moved), then whole-image inference on an image whose size is neither square nor a
    multiple of 32: the prediction covers every input pixel.

    To keep 20-odd configs fast, the backbone keeps the arch's widths but one block per stage,
    without stochastic depth (it would leave whole blocks without a gradient in a step of two
    images), and its filters are built for the training input; the crop they are built for is
    checked above, the full-size models are built by tests/test_analysis/test_config_table.py.
    """
    cfg = load(path)
    settings = ARCH_SETTINGS[cfg.model.backbone.arch]
    cfg.model.backbone.update(
        arch=dict(embed_dims=settings['embed_dims'], depths=(1, 1, 1, 1),
                  layer_scale_init=settings['layer_scale_init']),
        drop_path_rate=0., img_size=(32, 64))
    # pad the training images to a multiple of 32, not to the crop (512 and more)
    cfg.model.data_preprocessor.update(size=None, size_divisor=32)
    model = build(cfg)
    num_classes = cfg.model.decode_head.num_classes
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    log_vars = model.train_step(batch(32, 64, num_classes), optim_wrapper)
    losses = {key for key in log_vars if key.endswith('loss_ce')}
    assert losses == ({'decode.loss_ce', 'aux.loss_ce'} if cfg.model.get('auxiliary_head') else {'decode.loss_ce'})
    assert all(torch.isfinite(log_vars[key]) for key in losses), log_vars
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert moved == set(before)

    model.eval()
    height, width = 43, 75
    with torch.no_grad():
        result, = model.test_step(batch(height, width, num_classes, size=1))
    assert result.pred_sem_seg.data.shape == (1, height, width)
    assert result.seg_logits.data.shape == (num_classes, height, width)
    assert torch.isfinite(result.seg_logits.data).all()


def test_upernet_no_decay_groups():
    """The UperNet recipe (Swin's): no weight decay for the position embedding, every LayerNorm's
    weight and bias, and the layer scales; all else decays at 0.01. The expected sets come from
    the modules' types, the optimiser's from mmengine's constructor, which matches names."""
    cfg = load(UPERNET_ADE)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    decay_of = {id(p): group['weight_decay'] for group in optimizer.param_groups for p in group['params']}
    assert {group['lr'] for group in optimizer.param_groups} == {6e-5}
    backbone = model.backbone
    no_decay = {id(backbone.pos_embed)}
    no_decay |= {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    no_decay |= {id(m.gamma) for m in model.modules() if isinstance(m, Block)}
    names = dict(model.named_parameters())
    assert {id(p) for p in names.values()} == set(decay_of)  # every parameter is optimised
    assert {name for name, p in names.items() if decay_of[id(p)] == 0.} == \
        {name for name, p in names.items() if id(p) in no_decay}
    assert {decay_of[id(p)] for p in names.values() if id(p) not in no_decay} == {0.01}
    # by name: what the README says
    zero = sorted(name for name, p in names.items() if decay_of[id(p)] == 0.)
    assert 'backbone.pos_embed' in zero and 'backbone.blocks.2.9.gamma' in zero
    assert {'backbone.norm3.weight', 'backbone.norm3.bias', 'backbone.blocks.0.0.norm1.bias'} <= set(zero)
    assert all(re.fullmatch(r'backbone\.(pos_embed|norm\d\.(weight|bias)|blocks\.\d\.\d+\.'
                            r'(gamma|norm[12]\.(weight|bias)))', name) for name in zero), zero
    for decayed in ('backbone.blocks.0.0.filter.complex_weight', 'backbone.blocks.0.0.mlp.fc1.weight',
                    'backbone.blocks.0.0.mlp.fc1.bias', 'backbone.patch_embed.0.proj.weight',
                    'decode_head.fpn_bottleneck.bn.weight', 'auxiliary_head.conv_seg.bias'):
        assert decay_of[id(names[decayed])] == 0.01, decayed
