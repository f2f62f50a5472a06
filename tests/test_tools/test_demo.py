"""``make demo`` (gfnet_seg.demo.run_demo) end to end, shrunk to a tiny model and a few iterations."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmseg.apis import inference_model, init_model
from mmseg.evaluation import IoUMetric
from PIL import Image

from gfnet_seg.apis import predicted_classes
from gfnet_seg.datasets import CLASSES, chance_miou
from gfnet_seg.demo import DEMO_CONFIG, run_demo

from tool_utils import REPO_ROOT, TINY_MODEL

# In this process: no data loader workers, which would outlive the test.
NO_WORKERS = {f'{split}_dataloader.{key}': value for split in ('train', 'test')
              for key, value in (('num_workers', 0), ('persistent_workers', False))}


def test_demo_trains_evaluates_and_draws(tmp_path, capsys):
    iters = 6
    options = {**TINY_MODEL, **NO_WORKERS, 'train_cfg.max_iters': iters}
    summary = run_demo(osp.join(REPO_ROOT, DEMO_CONFIG), str(tmp_path / 'data'), str(tmp_path / 'work'),
                       options, num_train=4, num_val=2, num_threads=torch.get_num_threads())

    assert summary['checkpoint'] == str(tmp_path / 'work' / f'iter_{iters}.pth')
    # mIoU and chance recomputed independently: predictions from mmseg's inference API, IoU and
    # class frequencies counted with NumPy over the validation annotations.
    labels, predictions = [], []
    model = init_model(osp.join(REPO_ROOT, DEMO_CONFIG), summary['checkpoint'], device='cpu', cfg_options=options)
    for image in sorted(glob.glob(str(tmp_path / 'data' / 'images' / 'validation' / '*.jpg'))):
        annotation = image.replace('images', 'annotations').replace('.jpg', '.png')
        labels.append(np.asarray(Image.open(annotation)).astype(np.int64) - 1)  # reduce_zero_label: 0 -> -1
        predictions.append(predicted_classes(inference_model(model, image)))
    label, prediction = np.concatenate([x.ravel() for x in labels]), np.concatenate([x.ravel() for x in predictions])
    prediction = prediction[label >= 0]
    label = label[label >= 0]
    classes = np.arange(len(CLASSES))
    intersection = np.array([np.sum((label == c) & (prediction == c)) for c in classes])
    union = np.array([np.sum((label == c) | (prediction == c)) for c in classes])
    assert summary['miou'] == pytest.approx(100 * np.mean(intersection[union > 0] / union[union > 0]), abs=0.01)
    assert summary['chance'] == chance_miou(np.bincount(label, minlength=len(CLASSES)))
    image, overlay = cv2.imread(summary['image']), cv2.imread(summary['overlay'])
    assert overlay is not None and overlay.shape == image.shape
    printed = capsys.readouterr().out
    assert f"val mIoU    {summary['miou']:.2f}%" in printed
    assert f"chance      {100 * summary['chance']['chance']:.2f}%" in printed
    assert summary['overlay'] in printed


def blind_miou(counts, predict, rng) -> float:
    """mIoU of an image-blind predictor on ground truth with these class counts, measured by mmseg's
    own IoUMetric (areas summed over the data set; classes neither present nor predicted left out)."""
    label = torch.from_numpy(np.repeat(np.arange(len(counts)), counts))
    prediction = torch.from_numpy(predict(label.numel(), rng))
    areas = IoUMetric.intersect_and_union(prediction, label, len(counts), ignore_index=255)
    iou = IoUMetric.total_area_to_metrics(*areas, metrics=['mIoU'])['IoU']
    return float(np.nanmean(iou))


@pytest.mark.parametrize('counts', [[600_000, 250_000, 100_000, 0, 50_000], [250_000] * 4, [990_000, 10_000]])
def test_chance_formulas_match_simulated_blind_predictors(counts):
    """Each of chance_miou's closed forms against a million pixels predicted blindly, scored by
    mmseg: uniform guesses, guesses drawn with the class frequencies, the majority class."""
    rng = np.random.default_rng(0)
    freq = np.asarray(counts) / sum(counts)
    strategies = {
        'uniform': lambda n, rng: rng.integers(0, len(counts), n),
        'prior': lambda n, rng: rng.choice(len(counts), n, p=freq),
        'majority': lambda n, rng: np.full(n, np.argmax(counts)),
    }
    chance = chance_miou(counts)
    for name, predict in strategies.items():
        assert chance[name] == pytest.approx(blind_miou(counts, predict, rng), abs=2e-3), name
    assert chance['chance'] == max(chance[name] for name in strategies)
