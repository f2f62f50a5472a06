"""Latency and peak memory of GFNet-H and the backbones one would pick instead, across input sizes.

Every model is built here from mmseg/timm (random weights: speed does not depend on them), as a
backbone alone, as a whole Semantic FPN segmentor (``configs/sem_fpn``'s neck and head on that
backbone) or as a whole Mask R-CNN detector (``configs/mask_rcnn``'s FPN, RPN and RoI heads on that
backbone, mmdet's scope). A detector's work does depend on its weights through its detections: a
randomly initialised one scores no box above mmdet's 0.05 threshold and would skip its mask head,
so the benchmark keeps every image's ``max_per_img`` (100) best boxes, as a trained detector on a
busy COCO image does, and trains on made-up instances (``detection_batch``).

A call is timed after warm-up, several times, and the median kept, with every call's time: calls
of all models are interleaved, so call i of two models ran under the same load, and ``compare``
reports the median of their per-call ratios with a distribution-free interval (``paired_speedup``),
which a machine whose speed drifts between calls resolves better than the ratio of medians.

Sizes are square sides (512) or ``WIDTHxHEIGHT`` as mmdet writes its scales (1333x800: 1333 wide,
800 high, the detection size); GFNet-H resizes its filters (and position embedding) to any grid on the
fly. Every row also names its machine (``machine.machine_info``: CPU model, the vector ISA in effect and
the caps set, library versions), since the ratios between models differ between ISAs.

Peak memory is the largest total of tensor bytes allocated during one call beyond what existed before
it (weights and input excluded): ``max_memory_allocated`` on CUDA; on CPU the same quantity from the
profiler's allocation records (allocator events), not the process RSS, which the allocator's caching
blurs.
"""
import copy
import csv
import math
import os
import statistics
import time
from contextlib import nullcontext
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from tqdm import tqdm

from ..fileio import atomic_write_csv
from .machine import FIELDS as MACHINE_FIELDS
from .machine import describe, machine_info
from .plotting import pyplot, save_figure

# Backbones (mmseg config dicts) and their output channels, which size the FPN neck.
PEERS: Dict[str, Tuple[dict, Tuple[int, ...]]] = {
    'gfnet-h-ti': (dict(type='GFNetH', arch='h-ti', img_size=512), (64, 128, 256, 512)),
    'gfnet-h-s': (dict(type='GFNetH', arch='h-s', img_size=512), (96, 192, 384, 768)),
    'gfnet-h-b': (dict(type='GFNetH', arch='h-b', img_size=512), (96, 192, 384, 768)),
    # The same with gradient checkpointing (with_cp): training memory against step time.
    'gfnet-h-ti-cp': (dict(type='GFNetH', arch='h-ti', img_size=512, with_cp=True), (64, 128, 256, 512)),
    'gfnet-h-s-cp': (dict(type='GFNetH', arch='h-s', img_size=512, with_cp=True), (96, 192, 384, 768)),
    'gfnet-h-b-cp': (dict(type='GFNetH', arch='h-b', img_size=512, with_cp=True), (96, 192, 384, 768)),
    'swin-t': (dict(type='SwinTransformer'), (96, 192, 384, 768)),  # mmseg's defaults are Swin-T
    'pvtv2-b1': (dict(type='TIMMBackbone', model_name='pvt_v2_b1', features_only=True, pretrained=False),
                 (64, 128, 320, 512)),
    'pvtv2-b2': (dict(type='TIMMBackbone', model_name='pvt_v2_b2', features_only=True, pretrained=False),
                 (64, 128, 320, 512)),
    'resnet-50': (dict(type='ResNetV1c', depth=50), (256, 512, 1024, 2048)),
    # Global attention: four stride-16 maps of ViT-S/16 (blocks 3, 6, 9, 12), any input size.
    'vit-s': (dict(type='TIMMBackbone', model_name='vit_small_patch16_224', features_only=True,
                   pretrained=False, dynamic_img_size=True, out_indices=(2, 5, 8, 11)), (384,) * 4),
}
DEFAULT_MODELS = ('gfnet-h-ti', 'swin-t', 'pvtv2-b1', 'pvtv2-b2', 'resnet-50', 'vit-s')
SEG_CONFIG = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'sem_fpn',
                          'fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512.py')
DET_CONFIG = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'mask_rcnn',
                          'mask-rcnn_gfnet-h-ti_fpn_1x_coco.py')
PARTS = ('backbone', 'segmentor', 'detector')
CSV_FIELDS = ('model', 'part', 'mode', 'device', 'amp', 'threads', 'batch', 'height', 'width', 'tokens',
              'latency_ms', 'latency_min_ms', 'latencies_ms', 'images_per_s', 'peak_mem_mb', 'params_m',
              'status') + MACHINE_FIELDS
# Detection at mmdet's usual scale (1333x800), against the backbones detectors pair with; inference
# at batch 1, a training step at batch 2 (2 images per GPU in mmdet's schedules).
DETECTION_SIZE = (800, 1333)  # (height, width)
DETECTION_MODELS = ('gfnet-h-ti', 'swin-t', 'pvtv2-b2')
DETECTION_RUNS = (dict(train=False, batch=1), dict(train=True, batch=2))
DETECTION_PARTS = ('backbone', 'detector')
Size = Union[int, str, Tuple[int, int]]


def parse_size(text: Size) -> Tuple[int, int]:
    """``(height, width)`` of a size: a square side (512, '512'), ``'WIDTHxHEIGHT'`` ('1333x800', as
    mmdet writes scales) or a ``(height, width)`` pair."""
    if isinstance(text, (tuple, list)):
        height, width = (int(v) for v in text)
    elif isinstance(text, int):
        height = width = text
    else:
        parts = str(text).lower().replace('*', 'x').split('x')
        try:
            values = [int(v) for v in parts]
        except ValueError:
            values = []
        if len(values) not in (1, 2):
            raise ValueError(f"bad size '{text}': a side (512) or WIDTHxHEIGHT (1333x800)")
        width, height = values[0], values[-1]
    if height <= 0 or width <= 0:
        raise ValueError(f"bad size '{text}': sides must be positive")
    return height, width


def size_name(height: int, width: int) -> str:
    """``WIDTHxHEIGHT``, as ``parse_size`` reads it."""
    return f'{width}x{height}'
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def build(name: str, part: str = 'backbone', seg_config: str = SEG_CONFIG,
          det_config: str = DET_CONFIG) -> nn.Module:
    """A backbone of ``PEERS``, the Semantic FPN segmentor of ``seg_config`` on that backbone, or
    the Mask R-CNN detector of ``det_config`` on it (``build_detector``)."""
    from mmseg.registry import MODELS

    import gfnet_seg  # noqa: F401  (registers GFNetH, installs the mmcv-lite layer)
    if name not in PEERS:
        raise ValueError(f"unknown model '{name}'; valid: {', '.join(PEERS)}")
    if part not in PARTS:
        raise ValueError(f"unknown part '{part}'; valid: {', '.join(PARTS)}")
    backbone, channels = copy.deepcopy(PEERS[name])
    if part == 'backbone':
        return MODELS.build(backbone)
    if part == 'detector':
        return build_detector(name, det_config)
    from mmengine.config import Config
    cfg = Config.fromfile(seg_config).model
    cfg.backbone = backbone
    cfg.neck.in_channels = list(channels)
    cfg.pop('pretrained', None)
    return MODELS.build(cfg)


def build_detector(name: str, det_config: str = DET_CONFIG) -> nn.Module:
    """``det_config``'s detector (its neck and heads) on the backbone ``name`` of ``PEERS``, without
    pretrained weights, keeping every image's ``max_per_img`` best boxes (score threshold 0: see the
    module's docstring). GFNet-H keeps the config's filter size (the padded detection input); the
    other backbones are mmseg's and timm's (``mmseg.`` types, built from mmdet's scope), the same
    modules as their backbone rows."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    backbone, channels = copy.deepcopy(PEERS[name])
    cfg = Config.fromfile(det_config).model
    if backbone['type'] == 'GFNetH':
        backbone['img_size'] = cfg.backbone.img_size
        backbone['out_indices'] = cfg.backbone.out_indices
    else:
        backbone['type'] = 'mmseg.' + backbone['type']
    cfg.backbone = backbone
    cfg.neck.in_channels = list(channels)
    rcnn = cfg.test_cfg.get('rcnn')
    if rcnn is not None:
        rcnn.score_thr = 0.
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


def detection_batch(batch: int, height: int, width: int, num_classes: int = 80, instances: int = 8,
                    seed: int = 0) -> dict:
    """A detection data batch as mmdet's data loader hands it over: ``batch`` uint8 images of
    ``height`` x ``width`` and, per image, ``instances`` made-up objects (boxes of 1/16 to 1/2 of
    each side, their labels, and masks: the ellipse in each box)."""
    import numpy as np
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    gen = torch.Generator().manual_seed(seed)
    rows, cols = np.mgrid[:height, :width]
    inputs, samples = [], []
    for index in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=gen))
        size = torch.rand(instances, 2, generator=gen) * 7 / 16 + 1 / 16  # (w, h) as a share of the image
        size = size * torch.tensor([width, height])
        corner = torch.rand(instances, 2, generator=gen) * (torch.tensor([width, height]) - size)
        boxes = torch.cat([corner, corner + size], dim=1)
        masks = np.zeros((instances, height, width), dtype=np.uint8)
        for mask, (x0, y0, x1, y1) in zip(masks, boxes.tolist()):
            inside = ((cols - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2 + ((rows - (y0 + y1) / 2) / ((y1 - y0) / 2)) ** 2
            mask[inside <= 1] = 1
        sample = DetDataSample(metainfo=dict(img_id=index, img_shape=(height, width), ori_shape=(height, width),
                                             scale_factor=(1., 1.), flip=False))
        labels = torch.randint(0, num_classes, (instances,), generator=gen)
        sample.gt_instances = InstanceData(bboxes=boxes, labels=labels, masks=BitmapMasks(masks, height, width))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _total(outputs) -> torch.Tensor:
    """A scalar depending on every output, for backward."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float().mean()
    return sum(_total(out) for out in outputs)


def make_step(model: nn.Module, images: torch.Tensor, train: bool, amp: Optional[str],
              data: Optional[dict] = None) -> Callable[[], None]:
    """One forward (``train``: forward and backward) of ``model`` on ``images``; a detector takes
    ``data`` (``detection_batch``) instead, through its data preprocessor (normalisation, padding
    to multiples of 32) as in mmdet's ``train_step`` and ``test_step``: ``train`` sums its losses."""
    model.train(train)  # mmseg's Swin returns None from train(): do not chain
    autocast = (torch.autocast(images.device.type, dtype=AMP_DTYPES[amp]) if amp else nullcontext())
    if data is not None:
        return _detector_step(model, data, train, autocast)

    def step():
        if train:
            model.zero_grad(set_to_none=True)
            with autocast:
                loss = _total(model(images))
            loss.backward()
        else:
            with torch.no_grad(), autocast:
                model(images)

    return step


def _detector_step(model: nn.Module, data: dict, train: bool, autocast) -> Callable[[], None]:
    def step():
        if train:
            model.zero_grad(set_to_none=True)
            with autocast:
                batch = model.data_preprocessor(data, training=True)
                loss, _ = model.parse_losses(model(**batch, mode='loss'))
            loss.backward()
        else:
            with torch.no_grad(), autocast:
                model.test_step(data)

    return step


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_call(step: Callable[[], None], device: torch.device) -> float:
    """Seconds of one call, the device's queue included."""
    _synchronize(device)
    start = time.perf_counter()
    step()
    _synchronize(device)
    return time.perf_counter() - start


def peak_memory(step: Callable[[], None], device: torch.device) -> int:
    """Peak bytes of tensors allocated during one call beyond those alive before it."""
    if device.type == 'cuda':
        _synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        _synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]'),
                    key=lambda e: e.start_ns())
    allocated = peak = 0
    for event in events:
        allocated += event.nbytes()
        peak = max(peak, allocated)
    return peak


def _is_oom(err: BaseException) -> bool:
    text = str(err).lower()
    return (isinstance(err, (torch.OutOfMemoryError, MemoryError))
            or 'out of memory' in text or "can't allocate memory" in text)


def benchmark(models: Sequence[str] = DEFAULT_MODELS, sizes: Sequence[Size] = (224, 512, 1024),
              parts: Sequence[str] = ('backbone',), device: str = 'cpu', amp: Optional[str] = None,
              train: bool = False, batch: int = 1, warmup: int = 2, repeats: int = 5,
              time_cap: float = 60., memory: bool = True, seg_config: str = SEG_CONFIG,
              det_config: str = DET_CONFIG) -> List[dict]:
    """One CSV row per (model, part, size); ``sizes`` as ``parse_size`` reads them.

    At each size the timed calls of all models are interleaved (round-robin), so a load that
    changes during the run affects all of them alike and their ratios stay meaningful. Sizes run
    in increasing order; a model whose first call at a size runs out of memory or past
    ``time_cap`` seconds is skipped (and recorded) at the larger sizes.
    """
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f"unknown --amp '{amp}'; valid: {', '.join(AMP_DTYPES)}")
    device = torch.device(device)
    sizes = sorted(dict.fromkeys(parse_size(size) for size in sizes), key=lambda hw: (hw[0] * hw[1], hw))
    machine = machine_info(device)
    runs = {(name, part): build(name, part, seg_config, det_config).to(device) for name in models for part in parts}
    stopped: Dict[Tuple[str, str], str] = {}
    rows = []
    progress = tqdm(total=len(sizes) * len(runs) * (warmup + repeats + memory), desc='benchmark', unit='call')
    for size in sizes:
        images = torch.randn(batch, 3, *size, device=device)
        data = detection_batch(batch, *size) if 'detector' in parts else None
        results = {}
        for key, model in runs.items():
            results[key] = dict(status=stopped[key]) if key in stopped else dict(
                step=make_step(model, images, train, amp, data if key[1] == 'detector' else None), times=[])
        for call in range(warmup + repeats + memory):
            for key, result in results.items():
                progress.set_postfix_str(f'{size_name(*size)} {key[0]} {key[1]}')
                progress.update()
                if 'step' not in result:
                    continue
                try:
                    if call < warmup + repeats:
                        elapsed = time_call(result['step'], device)
                        if call == 0 and elapsed > time_cap:
                            raise TimeoutError(f'time cap: one call took {elapsed:.1f}s > {time_cap:g}s')
                        if call >= warmup:
                            result['times'].append(elapsed)
                    else:
                        result['peak'] = peak_memory(result['step'], device)
                except (RuntimeError, MemoryError, TimeoutError) as err:
                    if not isinstance(err, TimeoutError) and not _is_oom(err):
                        raise
                    result.clear()
                    result['status'] = str(err) if isinstance(err, TimeoutError) else 'out of memory'
                    stopped[key] = f'skipped: {result["status"]} at {size_name(*size)}'
                    if device.type == 'cuda':
                        torch.cuda.empty_cache()
        for (name, part), result in results.items():
            rows.append(_row(name, part, runs[name, part], size, batch, device, train, amp, result, machine))
    progress.close()
    return rows


def _row(name, part, model, size, batch, device, train, amp, result, machine) -> dict:
    height, width = size
    row = dict(model=name, part=part, mode='train' if train else 'infer', device=device.type,
               amp=amp or 'fp32', threads=torch.get_num_threads() if device.type == 'cpu' else '',
               batch=batch, height=height, width=width, tokens=height * width // 256,
               params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
               status=result.get('status', 'ok'))
    if row['status'] == 'ok':
        median = statistics.median(result['times'])
        peak = result.get('peak')
        row.update(latency_ms=round(median * 1e3, 2), latency_min_ms=round(min(result['times']) * 1e3, 2),
                   latencies_ms=' '.join(f'{t * 1e3:.2f}' for t in result['times']),
                   images_per_s=round(batch / median, 3),
                   peak_mem_mb=None if peak is None else round(peak / 2 ** 20, 1))
    row.update(machine)
    return row


def write_csv(rows: Iterable[dict], path: str) -> None:
    """The rows to ``path``, atomically: a run killed while writing leaves the previous file."""
    atomic_write_csv(path, rows, CSV_FIELDS)


def read_csv(path: str) -> List[dict]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def median_interval(values: Sequence[float], confidence: float = 0.95) -> Tuple[float, float, float, float]:
    """The median of ``values`` and a distribution-free interval for it: the k-th smallest and k-th
    largest value, k as large as keeps the coverage ``1 - 2 P(Binomial(n, 1/2) < k)`` at least
    ``confidence`` (k = 1 when even that falls short: 5 values give 94%). Returns (median, low, high,
    coverage)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError('no values to take the median of')

    def coverage(k: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n

    k = 1
    while k < (n + 1) // 2 and coverage(k + 1) >= confidence:
        k += 1
    return statistics.median(ordered), ordered[k - 1], ordered[n - k], coverage(k)


def paired_speedup(model_ms: Sequence[float], peer_ms: Sequence[float]) -> Tuple[float, float, float, float]:
    """``median_interval`` of ``peer / model`` over calls timed in the same rounds (how many times
    ``model``'s throughput ``peer``'s is)."""
    if len(model_ms) != len(peer_ms):
        raise ValueError(f'paired calls differ in number: {len(model_ms)} and {len(peer_ms)}')
    return median_interval([peer / model for model, peer in zip(model_ms, peer_ms)])


def _latencies(row: dict) -> List[float]:
    return [float(t) for t in str(row.get('latencies_ms') or '').split()]


def _group(row: dict) -> Tuple[str, str, int]:
    """(part, mode, batch) of a row: rows compare within one group."""
    return row['part'], row.get('mode') or 'infer', int(row.get('batch') or 1)


def _group_name(group: Tuple[str, str, int]) -> str:
    part, mode, batch = group
    return part + (f' {mode}' if mode != 'infer' else '') + (f' batch {batch}' if batch != 1 else '')


def _hw(row: dict) -> Tuple[int, int]:
    height = int(row['height'])
    return height, int(row.get('width') or height)


def compare(rows: Sequence[dict], model: str = 'gfnet-h-ti') -> List[str]:
    """Lines on ``model`` against every other model in ``rows``, per part, mode and batch: throughput
    ratio at each size both ran (the ratio of medians, and where rows carry every call's time, the
    median of paired per-call ratios with its interval), and how ``model``'s latency grows between
    consecutive sizes (beside the growth of N log2 N for N stride-4 tokens, the global filter's
    complexity). Sizes are named WIDTHxHEIGHT."""
    ok = {(r['model'], _group(r), _hw(r)): r for r in rows if r['status'] == 'ok'}
    latency = {key: float(r['latency_ms']) for key, r in ok.items()}
    peers = [m for m in dict.fromkeys(r['model'] for r in rows) if m != model]
    lines = []
    for group in dict.fromkeys(_group(r) for r in rows):
        name = _group_name(group)
        sizes = sorted((s for (m, g, s) in latency if m == model and g == group), key=lambda hw: (hw[0] * hw[1], hw))
        for size in sizes:
            for peer in peers:
                if (peer, group, size) in latency:
                    ratio = latency[peer, group, size] / latency[model, group, size]
                    line = f'{name} {size_name(*size)}: {model} runs {ratio:.2f}x the throughput of {peer}'
                    calls = _latencies(ok[model, group, size]), _latencies(ok[peer, group, size])
                    if len(calls[0]) > 1 and len(calls[0]) == len(calls[1]):
                        median, low, high, cover = paired_speedup(*calls)
                        line += (f' (paired over {len(calls[0])} interleaved calls: {median:.2f}x, '
                                 f'{cover:.0%} interval {low:.2f}-{high:.2f}x)')
                    lines.append(line)
        for small, large in zip(sizes, sizes[1:]):
            tokens = small[0] * small[1] / 16, large[0] * large[1] / 16
            bound = tokens[1] * math.log2(tokens[1]) / (tokens[0] * math.log2(tokens[0]))
            growth = latency[model, group, large] / latency[model, group, small]
            small_name = str(small[0]) if small[0] == small[1] else size_name(*small)
            large_name = str(large[0]) if large[0] == large[1] else size_name(*large)
            lines.append(f'{name} {model} {small_name} -> {large_name}: latency x{growth:.2f} '
                         f'(N log N of stride-4 tokens: x{bound:.2f})')
    return lines


def machine_line(rows: Sequence[dict]) -> str:
    """``machine.describe`` of the rows' machine (the first row's; '' without machine columns)."""
    if not rows or not rows[0].get('cpu_model'):
        return ''
    return 'machine: ' + describe(rows[0], rows[0].get('threads'))


def summary(rows: Sequence[dict]) -> str:
    """The machine, a line per row, then ``compare``'s lines."""
    lines = [f"{r['model']:>11} {_group_name(_group(r)):>9} {size_name(*_hw(r)):>9}  "
             + (f"{float(r['latency_ms']):10.1f} ms  {r.get('peak_mem_mb') or '-':>8} MiB" if r['status'] == 'ok'
                else r['status']) for r in rows]
    machine = machine_line(rows)
    return '\n'.join(([machine] if machine else []) + lines + compare(rows))


def plot(rows: Sequence[dict], path: str, title: str = '') -> None:
    """Latency and peak memory against the number of tokens (16x16 patches), one line per model and
    part (mode, batch); rows of a single size (the ``--detection`` preset) as bars instead, a group
    per part (mode, batch), a bar per model, each labelled with its value."""
    plt = pyplot()

    has_memory = any(r.get('peak_mem_mb') not in (None, '') for r in rows)
    fig, axes = plt.subplots(1, 2 if has_memory else 1, figsize=(11 if has_memory else 6, 4.2), squeeze=False)
    panels = [('latency_ms', 'latency (ms)')] + ([('peak_mem_mb', 'peak memory (MiB)')] if has_memory else [])
    groups = list(dict.fromkeys(_group(r) for r in rows))
    sizes = list(dict.fromkeys(_hw(r) for r in rows))
    for ax, (key, axis_label) in zip(axes[0], panels):
        if len(sizes) == 1:
            _bars(ax, rows, key, groups)
            ax.set_xlabel(f'at {size_name(*sizes[0])}')
        else:
            for model, group in dict.fromkeys((r['model'], _group(r)) for r in rows):
                points = sorted((int(r['tokens']), float(r[key])) for r in rows
                                if r['model'] == model and _group(r) == group and r['status'] == 'ok'
                                and r.get(key) not in (None, ''))
                if points:
                    style = '-' if model.startswith('gfnet') else '--'
                    name = _group_name(group) if len(groups) > 1 else group[0]
                    ax.plot(*zip(*points), style, marker='o', label=f'{model} ({name})')
            ax.set_xscale('log', base=2)
            ax.set_xlabel('tokens (16x16 patches of the input)')
        ax.set_yscale('log')
        ax.set_ylabel(axis_label)
        ax.grid(True, which='both', alpha=0.3)
    axes[0][0].legend(fontsize=8)
    save_figure(fig, path, title)


def _bars(ax, rows: Sequence[dict], key: str, groups: Sequence[Tuple[str, str, int]]) -> None:
    models = list(dict.fromkeys(r['model'] for r in rows))
    value = {(r['model'], _group(r)): float(r[key]) for r in rows
             if r['status'] == 'ok' and r.get(key) not in (None, '')}
    width = 0.8 / len(models)
    for index, model in enumerate(models):
        places = [(g + (index - (len(models) - 1) / 2) * width, value[model, group])
                  for g, group in enumerate(groups) if (model, group) in value]
        if places:
            bars = ax.bar(*zip(*places), width=width, label=model, hatch=None if model.startswith('gfnet') else '//')
            ax.bar_label(bars, labels=[f'{height:.0f}' for _, height in places], fontsize=6, rotation=90, padding=2)
    ax.set_xticks(range(len(groups)), [_group_name(group).replace(' train', '\ntrain') for group in groups], fontsize=8)
    ax.margins(y=0.15)
