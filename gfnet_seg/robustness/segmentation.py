"""Robustness of a segmentor: mIoU clean, under ImageNet-C's corruptions, and under PGD.

Everything runs through mmengine's Runner as ``tools/test.py`` does (``apis.setup_test``,
``build_runner``, the config's ``IoUMetric``): the clean score is ``runner.test()``; each
corruption re-runs it with ``ImageCorruption`` inserted into the test pipeline right after
``LoadImageFromFile``, i.e. on the image as read, before the pipeline's resize; the attack runs
the test loop's steps itself (data preprocessor, ``predict``, the evaluator) with PGD in between.

The attack is plain PGD (Madry et al.) on the per-pixel cross-entropy summed over the labelled
pixels of each image at its original resolution (the logits go through the segmentor's own
``postprocess_result``: padding removed, resized to the label map), ignore index excluded. It is
not SegPGD (Gu et al., 2022), which re-weights correctly and wrongly classified pixels over the
iterations; plain PGD keeps one attack for classification and segmentation.
"""
import copy
import io
import logging
import os
import zlib
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from mmseg.registry import DATASETS, TRANSFORMS
from tqdm import tqdm

from ..analysis.plotting import pyplot
from ..apis import build_runner, setup_test
from ..engine import check_data_config
from ..fileio import atomic_write_bytes, atomic_write_csv
from .attacks import AttackSettings, check_eval_mode, pgd
from .corruptions import CORRUPTIONS, check_corruptions, check_severities, corrupt, corruption_seed
from .report import format_table, severity_means

METRICS = ('mIoU', 'mAcc', 'aAcc')


@TRANSFORMS.register_module()
class ImageCorruption(BaseTransform):
    """Corrupt ``results['img']`` (BGR uint8, as loaded by ``LoadImageFromFile``). The random
    draws of each image come from (seed, its path, corruption, severity): every run, and every
    dataloader worker, corrupts an image the same way."""

    def __init__(self, corruption: str, severity: int, seed: int = 0):
        check_corruptions([corruption])
        check_severities([severity])
        self.corruption, self.severity, self.seed = corruption, severity, seed

    def transform(self, results: dict) -> dict:
        path_key = zlib.crc32(str(results.get('img_path', '')).encode())
        seed = corruption_seed(self.seed, path_key, list(CORRUPTIONS).index(self.corruption), self.severity)
        rgb = np.ascontiguousarray(results['img'][..., ::-1])
        results['img'] = np.ascontiguousarray(corrupt(rgb, self.corruption, self.severity, seed)[..., ::-1])
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(corruption={self.corruption}, severity={self.severity}, seed={self.seed})'


def corrupted_pipeline(pipeline: Sequence[dict], corruption: str, severity: int, seed: int = 0) -> list:
    """``pipeline`` with ``ImageCorruption`` right after ``LoadImageFromFile``."""
    pipeline = copy.deepcopy(list(pipeline))
    loads = [i for i, step in enumerate(pipeline) if step.get('type') == 'LoadImageFromFile']
    if not loads:
        raise ValueError('the test pipeline has no LoadImageFromFile step to corrupt the image after')
    pipeline.insert(loads[0] + 1, dict(type='ImageCorruption', corruption=corruption, severity=severity, seed=seed))
    return pipeline


def corrupted_dataloader(cfg: Config, corruption: str, severity: int, seed: int = 0) -> dict:
    dataloader = copy.deepcopy(cfg.test_dataloader)
    dataloader.dataset.pipeline = corrupted_pipeline(dataloader.dataset.pipeline, corruption, severity, seed)
    return dataloader


def _unnormalize(model, inputs: torch.Tensor) -> torch.Tensor:
    """The data preprocessor's output back to RGB images in [0, 1]."""
    preprocessor = model.data_preprocessor
    return ((inputs * preprocessor.std + preprocessor.mean) / 255.).clamp(0, 1)


def _normalize(model, images: torch.Tensor) -> torch.Tensor:
    preprocessor = model.data_preprocessor
    return (images * 255. - preprocessor.mean) / preprocessor.std


def _pixel_loss(model, samples):
    """Per-pixel cross-entropy of the segmentor on images in [0, 1], summed over the images'
    labelled pixels at their original resolution."""
    metas = [sample.metainfo for sample in samples]
    ignore_index = model.decode_head.ignore_index

    def loss_fn(images: torch.Tensor) -> torch.Tensor:
        logits = model.inference(_normalize(model, images), metas)
        results = model.postprocess_result(logits, [sample.clone() for sample in samples])
        return sum(F.cross_entropy(result.seg_logits.data[None], sample.gt_sem_seg.data.long(),
                                   ignore_index=ignore_index, reduction='sum')
                   for result, sample in zip(results, samples))
    return loss_fn


def attack_batch(model, data_batch: dict, settings: AttackSettings, generator: torch.Generator):
    """PGD on one test batch; returns (adversarial images in [0, 1], predictions on them)."""
    check_eval_mode(model)
    data = model.data_preprocessor(data_batch, False)
    samples = data['data_samples']
    adversarial = pgd(_pixel_loss(model, samples), _unnormalize(model, data['inputs']), settings, generator)
    with torch.no_grad():
        predictions = model.predict(_normalize(model, adversarial), samples)
    return adversarial, predictions


def adversarial_metrics(runner, dataloader_cfg: dict, settings: AttackSettings, seed: int = 0) -> dict:
    """The test loop's metrics with every batch replaced by its PGD version."""
    model = runner.model
    model.eval()
    loader = runner.build_dataloader(dataloader_cfg)
    evaluator = runner.test_loop.evaluator
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    for data_batch in tqdm(loader, desc=f'PGD eps {settings.eps:g}/255, {settings.steps} steps'):
        _, predictions = attack_batch(model, data_batch, settings, generator)
        evaluator.process(data_samples=predictions, data_batch=data_batch)
    return evaluator.evaluate(len(loader.dataset))


def _row(test: str, metrics: dict, severity='') -> dict:
    return {'test': test, 'severity': severity, **{key: round(float(metrics[key]), 2) for key in METRICS}}


def evaluate_segmentation_robustness(cfg: Config, checkpoint: str, corruptions: Sequence[str] = tuple(CORRUPTIONS),
                                     severities: Sequence[int] = (1, 2, 3, 4, 5),
                                     attack: Optional[AttackSettings] = AttackSettings(), seed: int = 0):
    """Rows of mIoU/mAcc/aAcc: clean, each corruption x severity, PGD (``attack=None``: none).
    Returns (rows, runner); the runner holds the loaded model for ``draw_examples``."""
    check_corruptions(corruptions)
    check_severities(severities)
    cfg = setup_test(cfg, checkpoint)
    check_data_config(cfg, ('test_dataloader',))
    runner = build_runner(cfg, training=False)
    rows = [_row('clean', runner.test())]
    settings = [(c, s) for c in corruptions for s in severities]
    for corruption, severity in tqdm(settings, desc='corruptions', disable=not settings):
        runner.test_loop.dataloader = runner.build_dataloader(corrupted_dataloader(cfg, corruption, severity, seed))
        rows.append(_row(corruption, runner.test(), severity))
        print_log(f'{corruption} severity {severity}: mIoU {rows[-1]["mIoU"]:.2f}', logger='current',
                  level=logging.INFO)
    if attack is not None:
        rows.append(_row('pgd', adversarial_metrics(runner, cfg.test_dataloader, attack, seed)))
    return rows, runner


def _colorize(label: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """Class map -> RGB with the data set's palette; ignored pixels black."""
    colors = np.zeros((256, 3), dtype=np.uint8)
    colors[:len(palette)] = np.asarray(palette, dtype=np.uint8)
    return colors[label.astype(np.int64).clip(0, 255)]


def draw_examples(runner, cfg: Config, out_file: str, corruptions: Sequence[str], severity: int,
                  attack: Optional[AttackSettings] = None, index: int = 0, seed: int = 0) -> None:
    """One test image clean, under each corruption (at ``severity``) and under PGD, each above
    the model's prediction; the last column is the ground truth. Written atomically."""
    model = runner.model
    model.eval()
    palette = runner.test_loop.dataloader.dataset.metainfo['palette']
    panels = []  # (title, image RGB, prediction)

    def predict(dataset_cfg, title):
        dataset = DATASETS.build(dataset_cfg)
        if not 0 <= index < len(dataset):
            raise ValueError(f'--show-index {index} is outside the test set of {len(dataset)} images')
        batch = pseudo_collate([dataset[index]])
        with torch.no_grad():
            (result,) = model.test_step(batch)
        image = batch['inputs'][0].permute(1, 2, 0).numpy()[..., ::-1]
        panels.append((title, image, result.pred_sem_seg.data[0].cpu().numpy()))
        return batch, result

    clean_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    batch, clean = predict(clean_cfg, 'clean')
    for corruption in corruptions:
        dataset_cfg = copy.deepcopy(clean_cfg)
        dataset_cfg.pipeline = corrupted_pipeline(clean_cfg.pipeline, corruption, severity, seed)
        predict(dataset_cfg, f'{corruption} {severity}')
    if attack is not None:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
        adversarial, (result,) = attack_batch(model, batch, attack, generator)
        image = (adversarial[0].permute(1, 2, 0).detach().cpu().numpy() * 255).round().astype(np.uint8)
        panels.append((f'PGD eps {attack.eps:g}', image, result.pred_sem_seg.data[0].cpu().numpy()))
    panels.append(('ground truth', panels[0][1], clean.gt_sem_seg.data[0].cpu().numpy()))

    plt = pyplot()
    per_row = min(len(panels), 6)
    bands = -(-len(panels) // per_row)
    fig, axes = plt.subplots(2 * bands, per_row, figsize=(2.2 * per_row, 2.2 * 2 * bands), squeeze=False)
    for ax in axes.ravel():
        ax.axis('off')
    for i, (title, image, label) in enumerate(panels):
        band, column = divmod(i, per_row)
        axes[2 * band, column].imshow(image)
        axes[2 * band, column].set_title(title, fontsize=8)
        axes[2 * band + 1, column].imshow(_colorize(label, palette), interpolation='nearest')
    fig.suptitle('inputs (upper rows) and predictions (lower rows)', fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=100)
    plt.close(fig)
    atomic_write_bytes(out_file, buffer.getvalue())



def run(cfg: Config, checkpoint: str, out_dir: str, corruptions: Sequence[str] = tuple(CORRUPTIONS),
        severities: Sequence[int] = (1, 2, 3, 4, 5), attack: Optional[AttackSettings] = AttackSettings(),
        seed: int = 0, show_index: int = 0, show_severity: Optional[int] = None):
    """``evaluate_segmentation_robustness``, then write ``seg_robustness.csv`` and the picture
    ``robustness.png`` to ``out_dir``; returns (rows, the printed report)."""
    if show_severity is None:
        show_severity = 3 if 3 in severities else max(severities, default=3)
    check_severities([show_severity])
    rows, runner = evaluate_segmentation_robustness(cfg, checkpoint, corruptions, severities, attack, seed)
    atomic_write_csv(os.path.join(out_dir, 'seg_robustness.csv'), rows, ('test', 'severity', *METRICS))
    draw_examples(runner, runner.cfg, os.path.join(out_dir, 'robustness.png'), corruptions, show_severity,
                  attack, show_index, seed)
    report = format_table(rows, ('test', 'severity', *METRICS))
    if corruptions:
        wide = severity_means(rows, 'mIoU', corruptions)
        mean = float(np.mean([row['mIoU'] for row in rows if row['test'] in CORRUPTIONS]))
        report += (f'\n\nmIoU (%) by corruption and severity (mean over all: {mean:.2f}):\n'
                   + format_table(wide, ['corruption', *(f's{s}' for s in sorted(severities)), 'mean']))
    return rows, report
