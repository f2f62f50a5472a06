"""Robustness of an ImageNet classifier (the GFNet paper's Table 3): clean, FGSM and PGD top-1,
ImageNet-C-style corruption accuracy and mCE, and plain folders such as ImageNet-A or -V2.

Torch and timm only, like the rest of ``gfnet_seg.classification``, whose pieces it reuses:
``image_folder`` and the evaluation transform (resize to ``input_size / crop_pct``, centre
crop), ``engine.evaluate`` for every score, ``trainer.build_model`` for the seven GFNets and
``models.checkpoint.load_checkpoint`` for the weights. Every test feeds images in [0, 1] to the
model wrapped in ``Normalized``, so the attacks perturb pixels, before normalisation.
"""
import csv
import logging
import os
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from tqdm import tqdm

from ..classification.data import build_transform, image_folder
from ..classification.engine import evaluate
from ..classification.trainer import build_model
from ..fileio import atomic_write_csv
from ..models.checkpoint import load_checkpoint
from ..models.gfnet import arch_settings
from .attacks import AttackSettings, check_eval_mode, fgsm, pgd
from .corruptions import CORRUPTIONS, check_corruptions, check_severities, corrupt, corruption_seed
from .report import format_table, severity_means, write_json

logger = logging.getLogger(__name__)

# Top-1 errors (%) of AlexNet on ImageNet-C, mean over the 5 severities, per corruption
# (Hendrycks & Dietterich, 2019; the values of their repository), the mCE reference.
ALEXNET_ERRORS = dict(zip(CORRUPTIONS, (
    88.6428, 89.4468, 92.2640, 81.9880, 82.6268, 78.5948, 79.8360, 86.6816, 82.6572, 81.9324,
    56.4592, 85.3204, 64.6056, 71.7840, 60.6500)))


class Normalized(nn.Module):
    """``model`` fed ``(images - mean) / std``: takes images in [0, 1], as the attacks do."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - self.mean) / self.std)


class ClassSubset(nn.Module):
    """The logits of ``indices`` only, in that order: a 1000-class head scored on a folder of
    fewer classes (ImageNet-A's 200) predicts among that folder's classes, as in Hendrycks et al."""

    def __init__(self, model: nn.Module, indices: Sequence[int]):
        super().__init__()
        self.model = model
        self.register_buffer('indices', torch.as_tensor(list(indices), dtype=torch.long))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)[:, self.indices]


def build_classifier(arch: str, num_classes: int, input_size: int, checkpoint: str,
                     embed_dims: Optional[Sequence[int]] = None, depths: Optional[Sequence[int]] = None
                     ) -> nn.Module:
    """A GFNet (``gfnet-h-ti``, ``gfnet_h_ti``, ...) or any timm model, with the weights of
    ``checkpoint`` loaded strictly (filters and position embedding resized to ``input_size``)."""
    try:
        arch_settings(arch)
        is_gfnet = True
    except ValueError:
        is_gfnet = False
    if is_gfnet:
        args = SimpleNamespace(arch=arch, input_size=input_size, drop=0., drop_path=0., embed_dims=embed_dims,
                               depths=depths)
        model = build_model(args, num_classes)
    else:
        if embed_dims or depths:
            raise ValueError('--embed-dims/--depths apply to the GFNets only')
        if not timm.is_model(arch):
            raise ValueError(f"unknown model '{arch}': not a GFNet arch nor a timm model name")
        try:  # vision transformers are built for the input size; CNNs take no img_size
            model = timm.create_model(arch, num_classes=num_classes, img_size=input_size)
        except TypeError:
            model = timm.create_model(arch, num_classes=num_classes)
    report = load_checkpoint(model, checkpoint, strict=True)
    logger.info(f'{arch}: {checkpoint}: {report.summary()}')
    return model.eval()


def eval_geometry(input_size: int, crop_pct: float) -> Tuple[transforms.Compose, list, list]:
    """The evaluation transform of ``train_cls.py`` split in two: the geometry (resize, centre
    crop) that ImageNet-C applied before corrupting, and the normalisation's mean and std."""
    transform = build_transform(False, SimpleNamespace(input_size=input_size, crop_pct=crop_pct))
    geometry = [t for t in transform.transforms if isinstance(t, (transforms.Resize, transforms.CenterCrop))]
    (normalize,) = [t for t in transform.transforms if isinstance(t, transforms.Normalize)]
    return transforms.Compose(geometry), normalize.mean.tolist(), normalize.std.tolist()


class CorruptedFolder(Dataset):
    """Images of a folder after the geometry transform, corrupted; tensors in [0, 1]. Each
    image's random draws come from (seed, index, corruption, severity), so results do not depend
    on loader workers or order."""

    def __init__(self, folder, corruption: str, severity: int, seed: int = 0):
        self.folder, self.corruption, self.severity, self.seed = folder, corruption, severity, seed
        self.corruption_id = list(CORRUPTIONS).index(corruption)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int):
        image, label = self.folder[index]
        seed = corruption_seed(self.seed, index, self.corruption_id, self.severity)
        corrupted = corrupt(np.asarray(image), self.corruption, self.severity, seed)
        return transforms.functional.to_tensor(corrupted), label


class Attacked:
    """A loader whose batches are replaced by their adversarial versions (for ``evaluate``)."""

    def __init__(self, loader: Iterable, model: nn.Module, attack: str, settings: AttackSettings,
                 device: torch.device, seed: int = 0):
        self.loader, self.model, self.attack, self.settings, self.device = loader, model, attack, settings, device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        for images, targets in self.loader:
            images, targets = images.to(self.device), targets.to(self.device)

            def loss_fn(x):
                return F.cross_entropy(self.model(x), targets, reduction='sum')

            if self.attack == 'fgsm':
                adversarial = fgsm(loss_fn, images, self.settings.eps)
            else:
                adversarial = pgd(loss_fn, images, self.settings, self.generator)
            yield adversarial, targets


@dataclass
class ClsRobustnessConfig:
    data_path: str
    attacks: Sequence[str] = ('fgsm', 'pgd')
    attack: AttackSettings = field(default_factory=AttackSettings)
    corruptions: Sequence[str] = tuple(CORRUPTIONS)
    severities: Sequence[int] = (1, 2, 3, 4, 5)
    extra_sets: Dict[str, str] = field(default_factory=dict)  # name -> folder (ImageNet-A, -V2, ...)
    classes_file: str = ''  # the head's classes, one per line; default: the classes of val/
    input_size: int = 224
    crop_pct: float = 0.875
    batch_size: int = 64
    num_workers: int = 4
    seed: int = 0

    def check(self) -> None:
        for attack in self.attacks:
            if attack not in ('fgsm', 'pgd'):
                raise ValueError(f"unknown attack '{attack}'; valid: fgsm, pgd")
        check_corruptions(self.corruptions)
        check_severities(self.severities)
        if self.classes_file and not os.path.isfile(self.classes_file):
            raise FileNotFoundError(f'class list file not found: {self.classes_file}')
        for name, folder in self.extra_sets.items():
            if not os.path.isdir(folder):
                raise FileNotFoundError(f'{name}: data folder not found: {folder}')


def read_classes(path: str) -> List[str]:
    """One class name per line (ImageNet: the 1000 WordNet ids in the head's order)."""
    with open(path) as f:
        classes = [line.strip() for line in f if line.strip()]
    if not classes:
        raise ValueError(f'{path}: no class names in the class list')
    return classes


def head_indices(folder_classes: Sequence[str], head_classes: Sequence[str], name: str) -> List[int]:
    """The head's output index of each sub-folder of a folder: named by a class of the head
    (WordNet ids, as in ImageNet-A and -R) or by the index itself (ImageNet-V2's 0..999)."""
    position = {cls: i for i, cls in enumerate(head_classes)}
    indices = []
    for cls in folder_classes:
        if cls in position:
            indices.append(position[cls])
        elif cls.isdigit() and int(cls) < len(head_classes):
            indices.append(int(cls))
        else:
            raise ValueError(f"{name}: sub-folder '{cls}' is neither a class of the model's class list "
                             f'({len(head_classes)} classes) nor an output index')
    return indices


def _loader(dataset: Dataset, config: ClsRobustnessConfig) -> DataLoader:
    return DataLoader(dataset, batch_size=config.batch_size, num_workers=config.num_workers, shuffle=False)


def _row(test: str, stats: dict, severity='') -> dict:
    return {'test': test, 'severity': severity, 'acc1': round(stats['acc1'], 3), 'acc5': round(stats['acc5'], 3),
            'images': stats['images']}


def evaluate_robustness(model: nn.Module, config: ClsRobustnessConfig, device: torch.device,
                        head_classes: Optional[Sequence[str]] = None) -> List[dict]:
    """One row per test: clean, each attack, each corruption x severity, each extra folder.
    ``model`` takes normalised images (a timm model); it must be in eval mode."""
    config.check()
    check_eval_mode(model)
    geometry, mean, std = eval_geometry(config.input_size, config.crop_pct)
    to_unit = transforms.Compose([geometry, transforms.ToTensor()])
    val_folder = image_folder(os.path.join(config.data_path, 'val'), to_unit)
    if head_classes is None:
        head_classes = read_classes(config.classes_file) if config.classes_file else val_folder.classes
    net = Normalized(model, mean, std).to(device).eval()
    val_model = ClassSubset(net, head_indices(val_folder.classes, head_classes, 'val'))

    rows = [_row('clean', evaluate(val_model, tqdm(_loader(val_folder, config), desc='clean'), device))]
    for attack in config.attacks:
        batches = Attacked(_loader(val_folder, config), val_model, attack, config.attack, device, config.seed)
        rows.append(_row(attack, evaluate(val_model, tqdm(batches, desc=attack), device)))
    geometry_folder = image_folder(os.path.join(config.data_path, 'val'), geometry)
    for corruption in config.corruptions:
        for severity in config.severities:
            dataset = CorruptedFolder(geometry_folder, corruption, severity, config.seed)
            loader = tqdm(_loader(dataset, config), desc=f'{corruption} {severity}')
            rows.append(_row(corruption, evaluate(val_model, loader, device), severity))
    for name, folder in config.extra_sets.items():
        dataset = image_folder(folder, to_unit)
        subset_model = ClassSubset(net, head_indices(dataset.classes, head_classes, name))
        rows.append(_row(name, evaluate(subset_model, tqdm(_loader(dataset, config), desc=name), device)))
    return rows


def corruption_errors(rows: Sequence[dict]) -> Dict[str, float]:
    """Top-1 error (%) per corruption, averaged over the severities evaluated."""
    errors: Dict[str, list] = {}
    for row in rows:
        if row['test'] in CORRUPTIONS:
            errors.setdefault(row['test'], []).append(100. - row['acc1'])
    return {name: float(np.mean(values)) for name, values in errors.items()}


def read_baseline_errors(path: str) -> Dict[str, float]:
    """``alexnet`` (the published AlexNet errors) or a CSV ``corruption,error`` (top-1 error in %,
    mean over severities) such as the ``corruption_errors.csv`` this tool writes."""
    if path == 'alexnet':
        return dict(ALEXNET_ERRORS)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'baseline errors file not found: {path}')
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {'corruption', 'error'} <= set(reader.fieldnames):
            raise ValueError(f'{path}: expected a CSV with the columns corruption,error; got {reader.fieldnames}')
        try:
            return {row['corruption']: float(row['error']) for row in reader}
        except ValueError as err:
            raise ValueError(f'{path}: an error value is not a number ({err})') from None


def mean_corruption_error(errors: Dict[str, float], baseline: Dict[str, float]) -> Tuple[Dict[str, float], float]:
    """Hendrycks & Dietterich's CE per corruption, 100 * E_model / E_baseline (errors summed, or
    equally averaged, over the same severities), and mCE, their mean."""
    missing = [name for name in errors if name not in baseline]
    if missing:
        raise ValueError(f'the baseline has no error for {", ".join(missing)}')
    if any(baseline[name] <= 0 for name in errors):
        raise ValueError('baseline errors must be positive')
    ce = {name: 100. * error / baseline[name] for name, error in errors.items()}
    return ce, float(np.mean(list(ce.values())))


def summarize(rows: Sequence[dict], baseline: Optional[Dict[str, float]] = None) -> dict:
    """Headline numbers: top-1 of each non-corruption test, the mean corruption accuracy and,
    with a baseline, CE per corruption and mCE."""
    summary = {row['test']: row['acc1'] for row in rows if row['test'] not in CORRUPTIONS}
    errors = corruption_errors(rows)
    if errors:
        summary['corruption_acc1'] = float(np.mean([100. - error for error in errors.values()]))
        if baseline is not None:
            summary['ce'], summary['mCE'] = mean_corruption_error(errors, baseline)
    return summary


def run(model: nn.Module, config: ClsRobustnessConfig, out_dir: str, device: torch.device,
        baseline_errors: str = '') -> Tuple[List[dict], dict, str]:
    """``evaluate_robustness``, then write ``cls_robustness.csv`` (every test),
    ``corruption_errors.csv`` (usable as another run's ``--baseline-errors``) and
    ``summary.json`` to ``out_dir``; returns (rows, summary, the printed report)."""
    baseline = read_baseline_errors(baseline_errors) if baseline_errors else None  # a bad file fails first
    rows = evaluate_robustness(model, config, device)
    summary = summarize(rows, baseline)
    atomic_write_csv(os.path.join(out_dir, 'cls_robustness.csv'), rows,
                     ('test', 'severity', 'acc1', 'acc5', 'images'))
    errors = corruption_errors(rows)
    if errors:
        atomic_write_csv(os.path.join(out_dir, 'corruption_errors.csv'),
                         [{'corruption': name, 'error': round(error, 4)} for name, error in errors.items()],
                         ('corruption', 'error'))
    write_json(os.path.join(out_dir, 'summary.json'), summary)
    headline = [{'test': test, 'top-1 (%)': value} for test, value in summary.items() if not isinstance(value, dict)]
    report = format_table(headline, ('test', 'top-1 (%)'))
    if errors:
        wide = severity_means(rows, 'acc1', list(errors))
        if 'ce' in summary:
            for row in wide:
                row['CE'] = summary['ce'][row['corruption']]
        columns = ['corruption', *(f's{s}' for s in sorted(config.severities)), 'mean']
        report += '\n\ncorruption top-1 (%) by severity' + (', CE (%)' if 'ce' in summary else '') + ':\n'
        report += format_table(wide, columns + (['CE'] if 'ce' in summary else []))
    return rows, summary, report
