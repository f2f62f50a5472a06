"""CPU latency of the exported GFNet-H-Ti (onnxruntime, both global filters) against PyTorch eager.

At each size every variant is exported at that fixed size, then the calls are interleaved
(PyTorch, onnxruntime native, onnxruntime matmul, PyTorch, ...) so that a shared machine's load
falls on all of them alike; the median of ``repeats`` calls is reported.
"""
import statistics
import time
from typing import Callable, Dict, List, Sequence

import torch
import torch.nn as nn
from tqdm import tqdm

from ..analysis.benchmark import SEG_CONFIG, build
from .export import FFT_NAMES, DeployedSegmentor, export_onnx
from .verify import ort_session

PARTS = ('backbone', 'segmentor')


class _Backbone(nn.Module):
    """GFNetH with the attribute ``export_onnx`` reads and a plain tuple output."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.with_preprocess = False

    @property
    def min_size(self) -> int:
        return self.backbone.strides[-1]

    def forward(self, x: torch.Tensor):
        return self.backbone(x)


def deployed_model(part: str, seg_config: str = SEG_CONFIG) -> nn.Module:
    """GFNet-H-Ti with random weights (filters built for 512 crops): the backbone alone or the
    whole Semantic FPN segmentor as ``pytorch2onnx.py`` exports it."""
    if part == 'backbone':
        return _Backbone(build('gfnet-h-ti', 'backbone', seg_config)).eval()
    return DeployedSegmentor(build('gfnet-h-ti', 'segmentor', seg_config)).eval()


def runners(module: nn.Module, size: int, ffts: Sequence[str], threads: int, optimization: str
            ) -> Dict[str, Callable[[], None]]:
    """One call of each variant on a random ``size`` x ``size`` image."""
    image = torch.randn(1, 3, size, size)
    feed = image.numpy()

    def eager():
        with torch.no_grad():
            module(image)

    calls = {'pytorch eager': eager}
    for fft in ffts:
        session = ort_session(export_onnx(module, (size, size), fft=fft), threads, optimization)
        name = session.get_inputs()[0].name
        calls[f'onnxruntime {fft}'] = lambda session=session, name=name: session.run(None, {name: feed})
    return calls


def benchmark(sizes: Sequence[int] = (512, 1024), parts: Sequence[str] = PARTS, ffts: Sequence[str] = FFT_NAMES,
              threads: int = 2, optimization: str = 'all', warmup: int = 1, repeats: int = 5) -> List[dict]:
    """Median latency (ms) per part, size and variant; PyTorch uses ``threads`` intra-op threads too."""
    torch.set_num_threads(threads)
    rows = []
    for part in parts:
        module = deployed_model(part)
        for size in sizes:
            calls = runners(module, size, ffts, threads, optimization)
            times = {name: [] for name in calls}
            for step in tqdm(range(warmup + repeats), desc=f'{part} {size}', unit='round', leave=False):
                for name, call in calls.items():
                    start = time.perf_counter()
                    call()
                    if step >= warmup:
                        times[name].append(time.perf_counter() - start)
            eager_ms = 1000 * statistics.median(times['pytorch eager'])
            for name, values in times.items():
                latency = 1000 * statistics.median(values)
                rows.append(dict(part=part, size=size, variant=name, latency_ms=latency,
                                 vs_eager=latency / eager_ms))
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """Markdown: one row per part and variant, one column per size (ms, and x PyTorch eager)."""
    sizes = sorted({row['size'] for row in rows})
    lines = ['| model | variant | ' + ' | '.join(str(s) for s in sizes) + ' |',
             '|---|---|' + '---|' * len(sizes)]
    keys = list(dict.fromkeys((row['part'], row['variant']) for row in rows))
    for part, variant in keys:
        cells = []
        for size in sizes:
            match = [r for r in rows if (r['part'], r['variant'], r['size']) == (part, variant, size)]
            cells.append(f"{match[0]['latency_ms']:.0f} ms ({match[0]['vs_eager']:.2f}x)" if match else '-')
        lines.append(f'| GFNet-H-Ti {part} | {variant} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
