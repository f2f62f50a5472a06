"""Latency and peak memory of GFNet-H and the backbones one would pick instead, across input sizes.

Every model is built here from mmseg/timm (random weights: speed does not depend on them), as a
backbone alone or as a whole Semantic FPN segmentor (``configs/sem_fpn``'s neck and head on that
backbone). A call is timed after warm-up, several times, and the median kept, with every call's time:
calls of all models are interleaved, so call i of two models ran under the same load, and ``compare``
reports the median of their per-call ratios with a distribution-free interval (``paired_speedup``),
which a machine whose speed drifts between calls resolves better than the ratio of medians.

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
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from tqdm import tqdm

from ..fileio import atomic_write_csv
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
PARTS = ('backbone', 'segmentor')
CSV_FIELDS = ('model', 'part', 'mode', 'device', 'amp', 'threads', 'batch', 'height', 'width', 'tokens',
              'latency_ms', 'latency_min_ms', 'latencies_ms', 'images_per_s', 'peak_mem_mb', 'params_m', 'status')
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def build(name: str, part: str = 'backbone', seg_config: str = SEG_CONFIG) -> nn.Module:
    """A backbone of ``PEERS``, or the Semantic FPN segmentor of ``seg_config`` on that backbone."""
    from mmseg.registry import MODELS

    import gfnet_seg  # noqa: F401  (registers GFNetH, installs the mmcv-lite layer)
    if name not in PEERS:
        raise ValueError(f"unknown model '{name}'; valid: {', '.join(PEERS)}")
    if part not in PARTS:
        raise ValueError(f"unknown part '{part}'; valid: {', '.join(PARTS)}")
    backbone, channels = copy.deepcopy(PEERS[name])
    if part == 'backbone':
        return MODELS.build(backbone)
    from mmengine.config import Config
    cfg = Config.fromfile(seg_config).model
    cfg.backbone = backbone
    cfg.neck.in_channels = list(channels)
    cfg.pop('pretrained', None)
    return MODELS.build(cfg)


def _total(outputs) -> torch.Tensor:
    """A scalar depending on every output, for backward."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float().mean()
    return sum(_total(out) for out in outputs)


def make_step(model: nn.Module, images: torch.Tensor, train: bool, amp: Optional[str]) -> Callable[[], None]:
    """One forward (``train``: forward and backward) of ``model`` on ``images``."""
    model.train(train)  # mmseg's Swin returns None from train(): do not chain
    autocast = (torch.autocast(images.device.type, dtype=AMP_DTYPES[amp]) if amp else nullcontext())

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


def benchmark(models: Sequence[str] = DEFAULT_MODELS, sizes: Sequence[int] = (224, 512, 1024),
              parts: Sequence[str] = ('backbone',), device: str = 'cpu', amp: Optional[str] = None,
              train: bool = False, batch: int = 1, warmup: int = 2, repeats: int = 5,
              time_cap: float = 60., memory: bool = True, seg_config: str = SEG_CONFIG) -> List[dict]:
    """One CSV row per (model, part, size).

    At each size the timed calls of all models are interleaved (round-robin), so a load that
    changes during the run affects all of them alike and their ratios stay meaningful. Sizes run
    in increasing order; a model whose first call at a size runs out of memory or past
    ``time_cap`` seconds is skipped (and recorded) at the larger sizes.
    """
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f"unknown --amp '{amp}'; valid: {', '.join(AMP_DTYPES)}")
    device = torch.device(device)
    runs = {(name, part): build(name, part, seg_config).to(device) for name in models for part in parts}
    stopped: Dict[Tuple[str, str], str] = {}
    rows = []
    progress = tqdm(total=len(sizes) * len(runs) * (warmup + repeats + memory), desc='benchmark', unit='call')
    for size in sorted(sizes):
        images = torch.randn(batch, 3, size, size, device=device)
        results = {}
        for key, model in runs.items():
            results[key] = dict(status=stopped[key]) if key in stopped else dict(
                step=make_step(model, images, train, amp), times=[])
        for call in range(warmup + repeats + memory):
            for key, result in results.items():
                progress.set_postfix_str(f'{size} {key[0]} {key[1]}')
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
                    stopped[key] = f'skipped: {result["status"]} at {size}x{size}'
                    if device.type == 'cuda':
                        torch.cuda.empty_cache()
        for (name, part), result in results.items():
            rows.append(_row(name, part, runs[name, part], size, batch, device, train, amp, result))
    progress.close()
    return rows


def _row(name, part, model, size, batch, device, train, amp, result) -> dict:
    row = dict(model=name, part=part, mode='train' if train else 'infer', device=device.type,
               amp=amp or 'fp32', threads=torch.get_num_threads() if device.type == 'cpu' else '',
               batch=batch, height=size, width=size, tokens=size * size // 256,
               params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
               status=result.get('status', 'ok'))
    if row['status'] == 'ok':
        median = statistics.median(result['times'])
        peak = result.get('peak')
        row.update(latency_ms=round(median * 1e3, 2), latency_min_ms=round(min(result['times']) * 1e3, 2),
                   latencies_ms=' '.join(f'{t * 1e3:.2f}' for t in result['times']),
                   images_per_s=round(batch / median, 3),
                   peak_mem_mb=None if peak is None else round(peak / 2 ** 20, 1))
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


def compare(rows: Sequence[dict], model: str = 'gfnet-h-ti') -> List[str]:
    """Lines on ``model`` against every other model in ``rows``: throughput ratio at each size both
    ran (the ratio of medians, and where rows carry every call's time, the median of paired per-call
    ratios with its interval), and how ``model``'s latency grows between consecutive sizes (beside
    the growth of N log2 N for N stride-4 tokens, the global filter's complexity)."""
    ok = {(r['model'], r['part'], int(r['height'])): r for r in rows if r['status'] == 'ok'}
    latency = {key: float(r['latency_ms']) for key, r in ok.items()}
    peers = [m for m in dict.fromkeys(r['model'] for r in rows) if m != model]
    lines = []
    for part in dict.fromkeys(r['part'] for r in rows):
        sizes = sorted(s for (m, p, s) in latency if m == model and p == part)
        for size in sizes:
            for peer in peers:
                if (peer, part, size) in latency:
                    ratio = latency[peer, part, size] / latency[model, part, size]
                    line = f'{part} {size}x{size}: {model} runs {ratio:.2f}x the throughput of {peer}'
                    calls = _latencies(ok[model, part, size]), _latencies(ok[peer, part, size])
                    if len(calls[0]) > 1 and len(calls[0]) == len(calls[1]):
                        median, low, high, cover = paired_speedup(*calls)
                        line += (f' (paired over {len(calls[0])} interleaved calls: {median:.2f}x, '
                                 f'{cover:.0%} interval {low:.2f}-{high:.2f}x)')
                    lines.append(line)
        for small, large in zip(sizes, sizes[1:]):
            tokens = (small / 4) ** 2, (large / 4) ** 2
            bound = tokens[1] * math.log2(tokens[1]) / (tokens[0] * math.log2(tokens[0]))
            growth = latency[model, part, large] / latency[model, part, small]
            lines.append(f'{part} {model} {small} -> {large}: latency x{growth:.2f} '
                         f'(N log N of stride-4 tokens: x{bound:.2f})')
    return lines


def summary(rows: Sequence[dict]) -> str:
    """A line per row, then ``compare``'s lines."""
    lines = [f"{r['model']:>11} {r['part']:>9} {r['height']:>5}  "
             + (f"{float(r['latency_ms']):10.1f} ms  {r['peak_mem_mb'] or '-':>8} MiB" if r['status'] == 'ok'
                else r['status']) for r in rows]
    return '\n'.join(lines + compare(rows))


def plot(rows: Sequence[dict], path: str, title: str = '') -> None:
    """Latency and peak memory against the number of tokens (16x16 patches), one line per model."""
    plt = pyplot()

    has_memory = any(r.get('peak_mem_mb') not in (None, '') for r in rows)
    fig, axes = plt.subplots(1, 2 if has_memory else 1, figsize=(11 if has_memory else 6, 4.2), squeeze=False)
    panels = [('latency_ms', 'latency (ms)')] + ([('peak_mem_mb', 'peak memory (MiB)')] if has_memory else [])
    for ax, (key, label) in zip(axes[0], panels):
        for model, part in dict.fromkeys((r['model'], r['part']) for r in rows):
            points = sorted((int(r['tokens']), float(r[key])) for r in rows
                            if r['model'] == model and r['part'] == part and r['status'] == 'ok'
                            and r.get(key) not in (None, ''))
            if points:
                style = '-' if model.startswith('gfnet') else '--'
                ax.plot(*zip(*points), style, marker='o', label=f'{model} ({part})')
        ax.set_xscale('log', base=2)
        ax.set_yscale('log')
        ax.set_xlabel('tokens (16x16 patches of the input)')
        ax.set_ylabel(label)
        ax.grid(True, which='both', alpha=0.3)
    axes[0][0].legend(fontsize=8)
    save_figure(fig, path, title)
