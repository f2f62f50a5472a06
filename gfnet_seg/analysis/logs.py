"""Training curves (loss, and mIoU or acc@1) from the logs our two training paths write.

Segmentation (mmengine): ``WORK_DIR/<timestamp>/vis_data/scalars.json``, one JSON object per line;
train lines carry ``loss`` and ``iter``, validation lines ``mIoU`` and ``step`` (the iteration).
A resumed run adds a timestamp folder; runs are read in order and a later one wins at an iteration
logged twice. Classification (``tools/train_cls.py``): ``OUTPUT_DIR/log.txt``, one JSON line per
epoch with ``train_loss``, ``test_loss``, ``test_acc1`` (and ``test_ema_acc1`` with EMA).
"""
import glob
import json
import os
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Tuple

from .plotting import pyplot, save_figure

Series = Dict[float, float]

SEG_LOG = os.path.join('*', 'vis_data', 'scalars.json')
CLS_LOG = 'log.txt'
CLS_LOSSES = {'train_loss': 'train loss', 'test_loss': 'val loss'}
CLS_METRICS = {'test_acc1': 'acc@1', 'test_ema_acc1': 'acc@1 (EMA)'}


@dataclass
class TrainingCurves:
    """Points ``{step: value}`` per series, for a loss panel and a metric panel."""
    step_name: str
    losses: Dict[str, Series] = field(default_factory=dict)
    metrics: Dict[str, Series] = field(default_factory=dict)


def _json_lines(path: str) -> Iterator[dict]:
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f'{path}:{number} is not a JSON line ({err})') from None


def read_seg_curves(work_dir: str) -> TrainingCurves:
    paths = sorted(glob.glob(os.path.join(work_dir, SEG_LOG)))
    curves = TrainingCurves('iteration', {'loss': {}}, {'mIoU': {}})
    for path in paths:
        for entry in _json_lines(path):
            if 'loss' in entry and 'iter' in entry:
                curves.losses['loss'][entry['iter']] = entry['loss']
            if 'mIoU' in entry and 'step' in entry:
                curves.metrics['mIoU'][entry['step']] = entry['mIoU']
    return curves


def read_cls_curves(output_dir: str) -> TrainingCurves:
    curves = TrainingCurves('epoch')
    for entry in _json_lines(os.path.join(output_dir, CLS_LOG)):
        for keys, panel in ((CLS_LOSSES, curves.losses), (CLS_METRICS, curves.metrics)):
            for key, label in keys.items():
                if key in entry and 'epoch' in entry:
                    panel.setdefault(label, {})[entry['epoch']] = entry[key]
    return curves


def read_curves(work_dir: str) -> TrainingCurves:
    """The curves of a segmentation work dir or a classification output dir, whichever it is."""
    if os.path.isfile(os.path.join(work_dir, CLS_LOG)):
        curves = read_cls_curves(work_dir)
    elif glob.glob(os.path.join(work_dir, SEG_LOG)):
        curves = read_seg_curves(work_dir)
    else:
        raise FileNotFoundError(f'{work_dir} has neither {CLS_LOG} (tools/train_cls.py) nor {SEG_LOG} '
                                '(tools/train.py): no training log to plot')
    if not any(curves.losses.values()):
        raise ValueError(f'the training log in {work_dir} has no loss entries yet')
    return curves


def _points(series: Series) -> Tuple[List[float], List[float]]:
    steps = sorted(series)
    return steps, [series[s] for s in steps]


def plot_curves(curves: TrainingCurves, path: str, title: str = '') -> None:
    """Loss (left) and metric (right, when there is one) against iterations or epochs."""
    plt = pyplot()

    panels = [('loss', curves.losses)] + ([('metric', curves.metrics)] if any(curves.metrics.values()) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (kind, series) in zip(axes[0], panels):
        for label, points in series.items():
            if points:
                ax.plot(*_points(points), marker='o' if kind == 'metric' else None, markersize=3, label=label)
        ax.set_xlabel(curves.step_name)
        ax.set_ylabel(kind if kind == 'loss' else ', '.join(label for label, p in series.items() if p))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path, title)
