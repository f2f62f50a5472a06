"""The config zoo: a Markdown table of every segmentation config, generated from the configs.

One row per config under ``configs/`` (bases excepted): head, backbone, data set, crop, schedule
(iterations, GPUs x images), parameters of the built segmentor (auxiliary head included), FLOPs
of a forward pass at the crop (decode head only, as at test time; the global filters' FFTs counted
by ``flops.py``) and the FFTs' share of them. A reference row computed by the same code from an mmseg config puts the numbers
next to a familiar model. The README holds the table between two marker comments, and the test
suite checks that it equals this module's output.
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


def find_configs(config_dir: str) -> List[str]:
    """Every config file under ``config_dir``, bases excepted, sorted."""
    paths = glob.glob(osp.join(config_dir, '**', '*.py'), recursive=True)
    return sorted(p for p in paths if '_base_' not in osp.relpath(p, config_dir).split(os.sep))


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


def read_config(config: str):
    """The config (a path, or ``mmseg::...``) with its backbone's pretrained checkpoint removed
    (none exists offline; weights change no count). Read once per file: mmengine spends about a
    second on each ``mmseg::`` base, and the tests read the same configs as the table."""
    cfg = copy.deepcopy(_read_config(resolve(config)))
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


def count_parameters(cfg) -> int:
    """Parameters of the config's segmentor, built on the meta device (shapes only: nothing is
    allocated or initialised, a fraction of the time) where its constructor allows; one that reads
    tensor values (Swin's drop path rates) is built on the CPU."""
    try:
        with torch.device('meta'):
            model = build_segmentor(cfg)
    except RuntimeError:
        model = build_segmentor(cfg)
    return sum(p.numel() for p in model.parameters())


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


def config_rows(config_dir: str, references: Sequence[str] = REFERENCE_CONFIGS, count_flops: bool = True,
                progress: bool = True) -> List[ConfigRow]:
    """Rows of every config under ``config_dir`` (named relative to it), then of ``references``."""
    configs = [(path, osp.relpath(path, config_dir)) for path in find_configs(config_dir)]
    if not configs:
        raise FileNotFoundError(f'no config files under {config_dir}')
    configs += [(ref, ref) for ref in references]
    return [describe(path, name, count_flops)
            for path, name in tqdm(configs, desc='configs', unit='config', disable=not progress)]


def markdown_table(rows: Sequence[ConfigRow]) -> str:
    lines = ['| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)]
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
