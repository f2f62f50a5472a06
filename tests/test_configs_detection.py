"""Every detection config (configs/retinanet, configs/mask_rcnn) builds, trains, predicts, and agrees
with its own file name; the Swin recipe's no-decay groups hit the intended parameters.

The list is globbed, so a new config is tested without touching this file. Models are built in
mmdet's scope (``default_scope='mmdet'``), as tools/train.py builds them.
"""
import glob
import os.path as osp
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from gfnet_seg import ARCH_SETTINGS
from gfnet_seg.analysis.config_table import read_config
from gfnet_seg.models.gfnet import Block

mmdet = pytest.importorskip('mmdet')
from mmdet.datasets import CocoDataset  # noqa: E402
from mmdet.registry import HOOKS, MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.mask import BitmapMasks  # noqa: E402

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DETECTION_DIRS = ('retinanet', 'mask_rcnn')
CONFIGS = sorted(path for folder in DETECTION_DIRS
                 for path in glob.glob(osp.join(REPO_ROOT, 'configs', folder, '*.py')))
# mmdet 3.x: {algorithm}_{backbone}_{neck}_[{gpus}xb{batch}-][{misc}-]{schedule}_{dataset}.py
NAME = re.compile(r'(?P<algo>retinanet|mask-rcnn)_(?P<backbone>gfnet-h-(?:ti|s|b))_fpn_'
                  r'(?:(?P<gpus>\d+)xb(?P<batch>\d+)-)?(?P<misc>ms-crop-)?(?P<schedule>\d+)x_'
                  r'(?P<dataset>coco|synthetic-coco)\.py')
ALGORITHMS = {'retinanet': 'RetinaNet', 'mask-rcnn': 'MaskRCNN'}
SWIN_3X = osp.join(REPO_ROOT, 'configs/mask_rcnn/mask-rcnn_gfnet-h-ti_fpn_ms-crop-3x_coco.py')
SYNTHETIC_CLASSES = ('ellipse', 'rectangle', 'triangle', 'star')
HOOK_TYPES = ['CocoDataCheckHook', 'IterationSeedHook', 'StopOnInvalidLossHook']


def config_id(path):
    return osp.relpath(path, osp.join(REPO_ROOT, 'configs'))


def padded(size, divisor=32):
    return -(-size // divisor) * divisor


def long_short(scale):
    """A keep-ratio scale as (long side, short side): mmdet reads (1333, 800) and (800, 1333) alike."""
    return max(scale), min(scale)


def train_scales(cfg):
    """Every (long, short) scale the training pipeline resizes to."""
    scales = []

    def visit(transforms):
        for t in transforms:
            if isinstance(t, (list, tuple)):
                visit(t)
            elif t.type == 'Resize':
                scales.append(long_short(t.scale))
            elif t.type == 'RandomChoiceResize':
                scales.extend(long_short(s) for s in t.scales)
            elif t.type == 'RandomChoice':
                visit(t.transforms)
    visit(cfg.train_dataloader.dataset.pipeline)
    return scales


def num_classes(cfg):
    if cfg.model.type == 'RetinaNet':
        return cfg.model.bbox_head.num_classes
    assert cfg.model.roi_head.bbox_head.num_classes == cfg.model.roi_head.mask_head.num_classes
    return cfg.model.roi_head.bbox_head.num_classes


def build(model_cfg):
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def test_configs_found():
    assert len(CONFIGS) == 11, CONFIGS  # 3 RetinaNet, 6 Mask R-CNN, 2 synthetic
    assert {NAME.fullmatch(osp.basename(p))['algo'] for p in CONFIGS} == set(ALGORITHMS)


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_name_matches_settings(path):
    match = NAME.fullmatch(osp.basename(path))
    assert match, f'{osp.basename(path)} does not follow {NAME.pattern}'
    assert osp.basename(osp.dirname(path)) == match['algo'].replace('-', '_')
    cfg = read_config(path)
    assert cfg.model.type == ALGORITHMS[match['algo']]
    assert match['backbone'] == 'gfnet-' + cfg.model.backbone.arch
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop' and cfg.train_cfg.max_epochs == 12 * int(match['schedule'])
    assert cfg.train_dataloader.batch_size == int(match['batch'] or 2)  # mmdet's default: 8 GPUs x 2
    ms_crop = any(t.type == 'RandomChoice' for t in cfg.train_dataloader.dataset.pipeline)
    assert ms_crop == bool(match['misc'])
    assert cfg.train_dataloader.dataset.type == 'CocoDataset'
    synthetic = match['dataset'] == 'synthetic-coco'
    assert cfg.train_dataloader.dataset.data_root == ('data/coco/synthetic/' if synthetic else 'data/coco/')
    # the real data sets are trained from ImageNet weights, the synthetic one from scratch
    init_cfg = read_config(path, keep_checkpoint=True).model.backbone.init_cfg
    if synthetic:
        assert init_cfg is None
    else:
        assert init_cfg == dict(type='Pretrained', checkpoint=f"checkpoints/{match['backbone']}.pth")


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_parts_agree(path):
    """Sizes and classes stated in several places must be the same value."""
    cfg = read_config(path)
    backbone = cfg.model.backbone
    # filters are built for the padded input of the largest training scale, a landscape image
    long_side, short_side = max(train_scales(cfg), key=lambda s: (s[1], s[0]))
    assert tuple(backbone.img_size) == (padded(short_side), padded(long_side))
    assert cfg.model.data_preprocessor.pad_size_divisor == 32
    embed_dims = ARCH_SETTINGS[backbone.arch]['embed_dims']
    assert cfg.model.neck.in_channels == [embed_dims[i] for i in backbone.out_indices]
    if cfg.model.type == 'RetinaNet':  # the FPN reads every output (no unused output norm)
        assert backbone.out_indices == (1, 2, 3) and cfg.model.neck.start_level == 0
    else:
        assert backbone.out_indices == (0, 1, 2, 3)
    metainfo = cfg.train_dataloader.dataset.get('metainfo')
    classes = metainfo.classes if metainfo else CocoDataset.METAINFO['classes']
    assert num_classes(cfg) == len(classes)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.get('metainfo') == metainfo
        assert loader.dataset.data_root == cfg.train_dataloader.dataset.data_root
        resize, = [t for t in loader.dataset.pipeline if t.type == 'Resize']
        assert resize.keep_ratio and long_short(resize.scale) == max(train_scales(cfg), key=lambda s: (s[1], s[0]))
    metric = cfg.val_evaluator.metric
    assert (['bbox', 'segm'] if cfg.model.type == 'MaskRCNN' else 'bbox') == metric
    assert cfg.val_evaluator.ann_file == cfg.val_dataloader.dataset.data_root + cfg.val_dataloader.dataset.ann_file
    masks = [t.get('with_mask', False) for t in cfg.train_dataloader.dataset.pipeline if t.type == 'LoadAnnotations']
    assert masks == [cfg.model.type == 'MaskRCNN']
    bounds = [(s.begin, s.end) for s in cfg.param_scheduler]
    assert bounds[-1][1] == cfg.train_cfg.max_epochs and cfg.param_scheduler[-1].by_epoch
    if metainfo:
        from gfnet_seg.datasets.synthetic_coco import METAINFO
        assert tuple(metainfo.classes) == tuple(METAINFO['classes']) == SYNTHETIC_CLASSES
        assert [tuple(c) for c in metainfo.palette] == [tuple(c) for c in METAINFO['palette']]


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_recipe(path):
    """PVT's protocol for the 1x configs (AdamW lr 1e-4, weight decay 1e-4, every parameter),
    Swin's for the 3x ones (weight decay 0.05, none for position embedding, norms, layer scales)."""
    cfg = read_config(path)
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'AdamW'
    if 'synthetic' in path:
        assert optimizer.lr == 5e-4 and cfg.train_dataloader.num_workers == 0
    elif '3x' in path:
        assert (optimizer.lr, optimizer.weight_decay, tuple(optimizer.betas)) == (1e-4, 0.05, (0.9, 0.999))
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {
            key: dict(decay_mult=0.) for key in ('pos_embed', 'norm', 'gamma')}
        assert cfg.param_scheduler[-1].milestones == [27, 33]
    else:
        assert (optimizer.lr, optimizer.weight_decay) == (1e-4, 1e-4)
        assert 'paramwise_cfg' not in cfg.optim_wrapper
        assert cfg.param_scheduler[-1].milestones == [8, 11]
    assert cfg.auto_scale_lr.base_batch_size == (2 if 'synthetic' in path else 16)


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_runs_are_safe_to_kill_and_resume(path):
    """Every config carries the reliability settings of gfnet_seg/engine, in mmdet's scope."""
    cfg = read_config(path)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['gfnet_seg'], allow_failed_imports=False)
    assert [hook['type'] for hook in cfg.custom_hooks] == HOOK_TYPES
    assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook'
    assert cfg.default_hooks.checkpoint.backend_args == dict(backend='atomic_local')
    assert cfg.randomness.seed is not None


@pytest.mark.parametrize('hook_type', HOOK_TYPES + ['SafeCheckpointHook'])
def test_hooks_resolve_in_mmdet_scope(hook_type):
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert HOOKS.get(hook_type) is not None, f'{hook_type} is not visible in mmdet scope'


def shrink(cfg):
    """The config's model with one block per stage (the arch's widths), no stochastic depth, filters
    built for the test input, and 32-channel neck and heads: fast, with every part of the config."""
    model = cfg.model
    settings = ARCH_SETTINGS[model.backbone.arch]
    model.backbone.update(arch=dict(embed_dims=settings['embed_dims'], depths=(1, 1, 1, 1),
                                    layer_scale_init=settings['layer_scale_init']),
                          drop_path_rate=0., img_size=(64, 96))
    model.neck.out_channels = 32
    if model.type == 'RetinaNet':
        model.bbox_head.update(in_channels=32, feat_channels=32, stacked_convs=1)
    else:
        model.rpn_head.update(in_channels=32, feat_channels=32)
        roi = model.roi_head
        roi.bbox_roi_extractor.out_channels = roi.mask_roi_extractor.out_channels = 32
        roi.bbox_head.update(in_channels=32, fc_out_channels=64)
        roi.mask_head.update(in_channels=32, conv_out_channels=32, num_convs=1)
        model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
        model.train_cfg.rcnn.sampler.num = 64
        model.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
    return model


def batch(sizes, num_classes, with_masks, seed=0, train=True):
    """A data batch as the data loader hands it over: uint8 images and their instances."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for height, width in sizes:
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=gen))
        sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             scale_factor=(1., 1.), img_id=0))
        if train:
            boxes = torch.tensor([[4., 6., width / 2, height / 2], [width / 3, height / 4, width - 3., height - 5.]])
            instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, num_classes - 1]))
            if with_masks:
                masks = np.zeros((2, height, width), dtype=np.uint8)
                for mask, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
                    mask[y0:y1, x0:x1] = 1
                instances.masks = BitmapMasks(masks, height, width)
            sample.gt_instances = instances
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_model_trains_and_predicts(path):
    """One training iteration on two images of different sizes (padded into one batch) with the
    config's losses and optimiser: every loss finite, every backbone weight moved; then prediction
    on a non-square image whose size is not a multiple of 32: boxes, labels, scores (and masks at
    the image's size) for each detection."""
    cfg = read_config(path)
    model = build(shrink(cfg))
    classes = num_classes(cfg)
    masks = cfg.model.type == 'MaskRCNN'
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {name: p.detach().clone() for name, p in model.backbone.named_parameters()}
    model.train()
    log_vars = model.train_step(batch([(64, 96), (70, 90)], classes, masks), optim_wrapper)
    expected = {'loss_cls', 'loss_bbox'} | ({'loss_rpn_cls', 'loss_rpn_bbox', 'loss_mask'} if masks else set())
    assert expected <= set(log_vars), log_vars
    assert all(torch.isfinite(log_vars[key]) for key in expected), log_vars
    moved = {name for name, p in model.backbone.named_parameters() if not torch.equal(p, before[name])}
    assert moved == set(before)

    model.eval()
    height, width = 90, 150
    with torch.no_grad():
        result, = model.test_step(batch([(height, width)], classes, masks, seed=1, train=False))
    pred = result.pred_instances
    count = len(pred)
    assert pred.bboxes.shape == (count, 4) and pred.labels.shape == (count,) and pred.scores.shape == (count,)
    assert torch.isfinite(pred.bboxes).all() and ((0 <= pred.labels) & (pred.labels < classes)).all()
    assert (pred.bboxes[:, 2] <= width).all() and (pred.bboxes[:, 3] <= height).all()
    if masks:
        assert pred.masks.shape == (count, height, width) and pred.masks.dtype == torch.bool
    else:
        assert 'masks' not in pred


def test_swin_recipe_no_decay_groups():
    """The 3x recipe (Swin's): no weight decay for the position embedding, every LayerNorm's weight
    and bias, and the layer scales; all else decays at 0.05. The expected sets come from the
    modules' types, the optimiser's from mmengine's constructor, which matches names."""
    cfg = read_config(SWIN_3X)
    settings = ARCH_SETTINGS[cfg.model.backbone.arch]
    cfg.model.backbone.update(arch=dict(embed_dims=settings['embed_dims'], depths=(1, 1, 2, 1),
                                        layer_scale_init=settings['layer_scale_init']), img_size=(64, 96))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    decay_of = {id(p): group['weight_decay'] for group in optimizer.param_groups for p in group['params']}
    assert {group['lr'] for group in optimizer.param_groups} == {1e-4}
    no_decay = {id(model.backbone.pos_embed)}
    no_decay |= {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    no_decay |= {id(m.gamma) for m in model.modules() if isinstance(m, Block)}
    names = dict(model.named_parameters())
    assert {id(p) for p in names.values()} == set(decay_of)  # every parameter is optimised
    assert {name for name, p in names.items() if decay_of[id(p)] == 0.} == \
        {name for name, p in names.items() if id(p) in no_decay}
    assert {decay_of[id(p)] for p in names.values() if id(p) not in no_decay} == {0.05}
    zero = sorted(name for name, p in names.items() if decay_of[id(p)] == 0.)
    assert 'backbone.pos_embed' in zero and 'backbone.blocks.2.1.gamma' in zero
    assert {'backbone.norm0.weight', 'backbone.norm3.bias', 'backbone.blocks.0.0.norm1.bias'} <= set(zero)
    assert all(re.fullmatch(r'backbone\.(pos_embed|norm\d\.(weight|bias)|blocks\.\d\.\d+\.'
                            r'(gamma|norm[12]\.(weight|bias)))', name) for name in zero), zero
    for decayed in ('backbone.blocks.0.0.filter.complex_weight', 'backbone.blocks.0.0.mlp.fc1.weight',
                    'backbone.patch_embed.0.proj.bias', 'neck.lateral_convs.0.conv.weight',
                    'rpn_head.rpn_conv.weight', 'roi_head.bbox_head.fc_cls.weight',
                    'roi_head.mask_head.conv_logits.bias'):
        assert decay_of[id(names[decayed])] == 0.05, decayed
