"""The config zoo: Markdown tables of the segmentation and the detection configs, generated from the configs.

One row per config under ``configs/`` (bases excepted): head, backbone, data set, crop, schedule
(iterations, GPUs x images), parameters of the built segmentor (auxiliary head included), FLOPs
of a forward pass at the crop (decode head only, as at test time; the global filters' FFTs counted
by ``flops.py``) and the FFTs' share of them. A reference row computed by the same code from an mmseg config puts the numbers
next to a familiar model. The README holds the table between two marker comments, and the test
suite checks that it equals this module's output.

Detection configs (``configs/retinanet``, ``configs/mask_rcnn``, mmdet scope) get their own table
(``task='detection'``), one per folder README, as mmdet's model zoo counts them: parameters of the
whole detector, FLOPs of its test-time forward at 1280x800 (``DETECTION_INPUT``; for Mask R-CNN the
RPN's up to 1000 proposals through the box head and the first 100 through the mask head, mmdet's
``mode='tensor'`` forward), FFTs counted; next to Swin-T and PVTv2-b2 in the same detectors.
"""
import copy
import functools
import glob
import importlib
import os
import os.path as osp
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from tqdm import tqdm

from ..fileio import atomic_write_bytes
from .flops import count_complexity

# mmseg's UperNet Swin-T: the model the UperNet configs copy their recipe from.
REFERENCE_CONFIGS = ('mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',)
HEAD_NAMES = {'FPNHead': 'Semantic FPN', 'UPerHead': 'UperNet'}
MARKERS = ('<!-- config-table:start -->', '<!-- config-table:end -->')
COLUMNS = ('config', 'head', 'backbone', 'data set', 'crop', 'schedule', 'params', 'FLOPs', 'FFT share')
COUNTED_COLUMNS = (COLUMNS.index('FLOPs'), COLUMNS.index('FFT share'))  # need a forward pass
GPUS_AND_BATCH = re.compile(r'_(\d+)xb(\d+)-')
TASKS = ('segmentation', 'detection')
# Folders of detection configs (mmdet scope); every other config under configs/ is a segmentation one.
DETECTION_DIRS = ('retinanet', 'mask_rcnn')
# mmdet's own configs of the same detectors, by detector type (mmdet 3.3 has no Mask R-CNN PVTv2).
DETECTION_REFERENCES = {
    'RetinaNet': ('mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py', 'mmdet::pvt/retinanet_pvtv2-b2_fpn_1x_coco.py'),
    'MaskRCNN': ('mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',),
}
DETECTOR_NAMES = {'RetinaNet': 'RetinaNet', 'MaskRCNN': 'Mask R-CNN'}
DETECTION_INPUT = (800, 1280)  # (H, W): mmdet's convention for FLOPs, 1280x800
DETECTION_COLUMNS = ('config', 'detector', 'backbone', 'data set', 'training scales', 'schedule', 'params',
                     'FLOPs', 'FFT share')
# mmdet's default when a file name states no {gpus}xb{batch}: 8 GPUs x 2 images
DEFAULT_GPUS = 8
assert [DETECTION_COLUMNS.index(c) for c in ('FLOPs', 'FFT share')] == list(COUNTED_COLUMNS)


@dataclass
class ConfigRow:
    """What the table says about one config."""
    config: str
    head: str
    backbone: str
    dataset: str
    crop: Tuple[int, int]
    max_iters: int
    gpus: int
    batch_size: int
    params: int
    flops: Optional[int] = None  # None: not counted
    fft_flops: Optional[int] = None

    def cells(self) -> List[str]:
        iters = f'{self.max_iters // 1000}k' if self.max_iters % 1000 == 0 else str(self.max_iters)
        counted = self.flops is not None
        return [f'`{self.config}`', self.head, self.backbone, self.dataset, f'{self.crop[0]}x{self.crop[1]}',
                f'{iters}, {self.gpus}x{self.batch_size}', f'{self.params / 1e6:.2f}M',
                f'{self.flops / 1e9:.2f}G' if counted else '',
                f'{100 * self.fft_flops / self.flops:.2f}%' if counted else '']


def config_task(path: str) -> str:
    """'detection' for a config in one of ``DETECTION_DIRS``, else 'segmentation'."""
    return 'detection' if set(osp.abspath(path).split(os.sep)) & set(DETECTION_DIRS) else 'segmentation'


def find_configs(config_dir: str, task: str = 'segmentation') -> List[str]:
    """Every config file of ``task`` under ``config_dir``, bases excepted, sorted."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; choose one of {TASKS}")
    paths = glob.glob(osp.join(config_dir, '**', '*.py'), recursive=True)
    return sorted(p for p in paths if '_base_' not in osp.relpath(p, config_dir).split(os.sep)
                  and config_task(p) == task)


def resolve(config: str) -> str:
    """The file of a config, absolute: a path, or ``mmseg::...`` for one that mmseg installs."""
    path = config
    if '::' in config:
        package, relative = config.split('::', 1)
        path = osp.join(osp.dirname(importlib.import_module(package).__file__), '.mim', 'configs', relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {config}')
    return osp.abspath(path)


@functools.lru_cache(maxsize=None)
def _read_config(path: str):
    from mmengine.config import Config

    import gfnet_seg  # noqa: F401  (registers GFNetH, installs the mmcv-lite layer)
    return Config.fromfile(path)


def read_config(config: str, keep_checkpoint: bool = False):
    """The config (a path, or ``mmseg::...``/``mmdet::...``) with its backbone's pretrained
    checkpoint removed (none exists offline; weights change no count) unless ``keep_checkpoint``.
    Read once per file: mmengine spends about a second on each ``mmseg::``/``mmdet::`` base, and
    the tests read the same configs as the table."""
    cfg = copy.deepcopy(_read_config(resolve(config)))
    if keep_checkpoint:
        return cfg
    cfg.model.backbone.init_cfg = None
    cfg.model.pop('pretrained', None)
    return cfg


def build_segmentor(cfg) -> torch.nn.Module:
    """The config's segmentor, built in the config's registry scope (mmseg's own configs do not
    name it on every model dict)."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmseg')):
        return MODELS.build(cfg.model)


def build_detector(cfg) -> torch.nn.Module:
    """The config's detector, built in mmdet's registry scope."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        return MODELS.build(cfg.model)


def count_parameters(cfg, build=build_segmentor) -> int:
    """Parameters of the config's model (``build``: segmentor or detector), built on the meta device
    (shapes only: nothing is allocated or initialised, a fraction of the time) where its constructor
    allows; one that reads tensor values (Swin's drop path rates) is built on the CPU."""
    try:
        with torch.device('meta'):
            model = build(cfg)
    except RuntimeError:
        model = build(cfg)
    return sum(p.numel() for p in model.parameters())


class DetectorForCounting(torch.nn.Module):
    """A detector's test-time forward on a batch of one image as a function of the image tensor
    alone, for the FLOPs counter (a jit trace): mmdet's ``mode='tensor'`` forward, with the image's
    meta information made up from its size (as mmdet's tools/analysis_tools/get_flops.py does)."""

    def __init__(self, detector: torch.nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, image: torch.Tensor):
        from mmdet.structures import DetDataSample

        size = tuple(image.shape[-2:])
        meta = dict(img_shape=size, ori_shape=size, pad_shape=size, batch_input_shape=size, scale_factor=(1., 1.))
        return self.detector._forward(image, [DetDataSample(metainfo=meta)])


def _as_pair(size) -> Tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def _backbone_name(backbone) -> str:
    """'GFNet-H-Ti' for ``GFNetH`` with arch 'h-ti'; the registered type for other backbones."""
    arch = backbone.get('arch')
    if backbone.type == 'GFNetH' and isinstance(arch, str):
        return 'GFNet-' + '-'.join(part.capitalize() if len(part) > 1 else part.upper() for part in arch.split('-'))
    return backbone.type


def describe(config: str, name: str, count_flops: bool = True) -> ConfigRow:
    """The row of one config (``name`` is what the table shows); without ``count_flops``, in
    seconds: the FLOPs need a forward pass at the crop."""
    cfg = read_config(config)
    crop = _as_pair(cfg.crop_size)
    if count_flops:
        counts, = count_complexity(build_segmentor(cfg), crop)
        params, flops, fft_flops = counts.params, counts.flops, counts.fft_flops
    else:
        params, flops, fft_flops = count_parameters(cfg), None, None
    found = GPUS_AND_BATCH.search(osp.basename(config))
    if found is None:
        raise ValueError(f'{config}: the file name states no {{gpus}}xb{{batch}} (mmseg naming)')
    head = cfg.model.decode_head.type
    dataset = cfg.train_dataloader.dataset.type
    return ConfigRow(
        config=name, head=HEAD_NAMES.get(head, head), backbone=_backbone_name(cfg.model.backbone),
        dataset=dataset[:-len('Dataset')] if dataset.endswith('Dataset') else dataset, crop=crop,
        max_iters=cfg.train_cfg.max_iters, gpus=int(found[1]), batch_size=cfg.train_dataloader.batch_size,
        params=params, flops=flops, fft_flops=fft_flops)


@dataclass
class DetectionRow:
    """What the detection table says about one config."""
    config: str
    detector: str
    backbone: str
    dataset: str
    scales: str
    max_epochs: int
    gpus: int
    batch_size: int
    params: int
    flops: Optional[int] = None  # None: not counted
    fft_flops: Optional[int] = None

    def cells(self) -> List[str]:
        counted = self.flops is not None
        return [f'`{self.config}`', self.detector, self.backbone, self.dataset, self.scales,
                f'{self.max_epochs} ep, {self.gpus}x{self.batch_size}', f'{self.params / 1e6:.2f}M',
                f'{self.flops / 1e9:.2f}G' if counted else '',
                f'{100 * self.fft_flops / self.flops:.2f}%' if counted else '']


def _long_short(scale) -> Tuple[int, int]:
    return max(scale), min(scale)


def training_scales(pipeline) -> str:
    """The training input scale of a detection pipeline as (long side)x(short side): '1333x800', or
    the range of a multi-scale one ('1333x(480-800)'), '+ crop' when a random crop is among the
    choices. Of a chain of transforms the last resize counts (Swin's crop branch resizes to 400..600,
    crops, and resizes to 480..800)."""
    crop = False

    def final(transforms) -> list:
        nonlocal crop
        scales = []
        for t in transforms:
            if isinstance(t, (list, tuple)):
                scales = final(t) or scales
            elif t['type'] == 'Resize':
                scales = [_long_short(t['scale'])]
            elif t['type'] in ('RandomChoiceResize', 'RandomResize'):  # RandomResize: a range between two
                scales = [_long_short(s) for s in t['scales' if t['type'] == 'RandomChoiceResize' else 'scale']]
            elif t['type'] == 'RandomChoice':  # each branch its own chain
                scales = [s for branch in t['transforms'] for s in final(branch)] or scales
            elif t['type'] == 'RandomCrop':
                crop = True
        return scales

    scales = final(pipeline)
    if not scales:
        return ''
    long_side = '/'.join(str(v) for v in sorted({s[0] for s in scales}))
    shorts = sorted({s[1] for s in scales})
    text = f'{long_side}x{shorts[0]}' if len(shorts) == 1 else f'{long_side}x({shorts[0]}-{shorts[-1]})'
    return text + (' + crop' if crop else '')


# The reference backbones by their mmdet settings: (type, embed_dims, depths) -> name.
_REFERENCE_BACKBONES = {
    ('SwinTransformer', 96, (2, 2, 6, 2)): 'Swin-T',
    ('PyramidVisionTransformerV2', 64, (3, 4, 6, 3)): 'PVTv2-b2',
}


def _detection_backbone_name(backbone) -> str:
    """As ``_backbone_name``, with the model names of the reference backbones ('Swin-T', 'PVTv2-b2')."""
    depths = backbone.get('depths', backbone.get('num_layers'))
    key = (backbone.type, backbone.get('embed_dims'), tuple(depths) if depths else None)
    return _REFERENCE_BACKBONES.get(key, _backbone_name(backbone))


def count_detector(cfg, shape: Tuple[int, int] = DETECTION_INPUT):
    """Params, FLOPs and FFT FLOPs of the config's detector at ``shape`` (H, W), test-time forward."""
    torch.manual_seed(0)  # the proposals (and so the RoI heads' work) depend on the weights
    counts, = count_complexity(DetectorForCounting(build_detector(cfg)), shape)
    return counts


def describe_detection(config: str, name: str, count_flops: bool = True,
                       shape: Tuple[int, int] = DETECTION_INPUT) -> DetectionRow:
    """The detection table's row of one config (``name`` is what the table shows); FLOPs (a forward
    pass at ``shape``, H x W) only with ``count_flops``."""
    cfg = read_config(config)
    if count_flops:
        counts = count_detector(cfg, shape)
        params, flops, fft_flops = counts.params, counts.flops, counts.fft_flops
    else:
        params, flops, fft_flops = count_parameters(cfg, build_detector), None, None
    found = GPUS_AND_BATCH.search(osp.basename(config))
    dataset = cfg.train_dataloader.dataset
    data_name = 'COCO' if dataset.type == 'CocoDataset' else dataset.type
    if 'synthetic' in str(dataset.get('data_root', '')):
        data_name = 'synthetic ' + data_name
    return DetectionRow(
        config=name, detector=DETECTOR_NAMES.get(cfg.model.type, cfg.model.type),
        backbone=_detection_backbone_name(cfg.model.backbone), dataset=data_name,
        scales=training_scales(dataset.pipeline), max_epochs=cfg.train_cfg.max_epochs,
        gpus=int(found[1]) if found else DEFAULT_GPUS, batch_size=cfg.train_dataloader.batch_size,
        params=params, flops=flops, fft_flops=fft_flops)


def config_rows(config_dir: str, references: Optional[Sequence[str]] = None, count_flops: bool = True,
                progress: bool = True, task: str = 'segmentation') -> list:
    """Rows of every ``task`` config under ``config_dir`` (named relative to it), then of
    ``references`` (None: ``REFERENCE_CONFIGS`` for segmentation; for detection mmdet's
    ``DETECTION_REFERENCES`` of the detectors found)."""
    configs = [(path, osp.relpath(path, config_dir)) for path in find_configs(config_dir, task)]
    if not configs:
        raise FileNotFoundError(f'no {task} config files under {config_dir}')
    if references is None:
        if task == 'segmentation':
            references = REFERENCE_CONFIGS
        else:
            detectors = sorted({read_config(path).model.type for path, _ in configs})
            references = [ref for detector in detectors for ref in DETECTION_REFERENCES.get(detector, ())]
    configs += [(ref, ref) for ref in references]
    row_of = describe if task == 'segmentation' else describe_detection
    return [row_of(path, name, count_flops)
            for path, name in tqdm(configs, desc='configs', unit='config', disable=not progress)]


def markdown_table(rows: Sequence) -> str:
    """The rows (all ``ConfigRow`` or all ``DetectionRow``) as a Markdown table with their columns."""
    columns = DETECTION_COLUMNS if rows and isinstance(rows[0], DetectionRow) else COLUMNS
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(row.cells()) + ' |' for row in rows]
    return '\n'.join(lines) + '\n'


def table_between_markers(text: str) -> str:
    """The part of ``text`` (the README) between the two marker comments."""
    start, end = (text.find(marker) for marker in MARKERS)
    if start < 0 or end < start:
        raise ValueError(f'no table between {MARKERS[0]} and {MARKERS[1]}')
    return text[start + len(MARKERS[0]):end].strip('\n') + '\n'


def replace_between_markers(text: str, table: str) -> str:
    """``text`` with the part between the marker comments replaced by ``table``."""
    table_between_markers(text)  # both markers present
    start = text.find(MARKERS[0]) + len(MARKERS[0])
    return text[:start] + '\n' + table + text[text.find(MARKERS[1]):]


def table_in(path: str) -> str:
    """The table between the marker comments of the file at ``path``; the error names the file."""
    with open(path, encoding='utf-8') as file:
        text = file.read()
    try:
        return table_between_markers(text)
    except ValueError as err:
        raise ValueError(f'{path}: {err}') from None


def update_table_in(path: str, table: str) -> None:
    """Replace the table between the marker comments of the file at ``path`` (written atomically)."""
    table_in(path)
    with open(path, encoding='utf-8') as file:
        text = replace_between_markers(file.read(), table)
    atomic_write_bytes(path, text.encode('utf-8'))


def split_cells(table: str) -> List[List[str]]:
    """The cells of each row of a Markdown table, header and rule included."""
    return [[cell.strip() for cell in line.strip().strip('|').split('|')] for line in table.strip().splitlines()]
