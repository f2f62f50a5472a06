"""tools/train_cls.py end to end: training writes checkpoints and a log, --eval reports accuracy."""
import math
import os

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from torch.utils.data import DataLoader, TensorDataset

from gfnet_seg.classification import evaluate, main

from cls_utils import COLOURS, DEPTHS, EMBED_DIMS, IMAGE_SIZE, TINY_MODEL, read_log

CHANCE = 100. / len(COLOURS)


def test_training_writes_checkpoints_log_and_learns(cli_run):
    output_dir, stdout = cli_run
    log = read_log(output_dir)
    assert [entry['epoch'] for entry in log] == [0, 1, 2, 3]
    assert 'loss' in stdout and 'lr' in stdout and 'imgs/s' in stdout  # periodic progress lines
    accuracies = [entry['test_acc1'] for entry in log]
    assert max(accuracies) > 2 * CHANCE and log[-1]['test_loss'] < math.log(len(COLOURS))

    last = torch.load(os.path.join(output_dir, 'checkpoint.pth'), weights_only=True)
    best = torch.load(os.path.join(output_dir, 'checkpoint_best.pth'), weights_only=True)
    assert last['epoch'] == 3 and isinstance(last['args'], dict) and last['args']['epochs'] == 4
    assert best['epoch'] == accuracies.index(max(accuracies)) and best['max_accuracy'] == max(accuracies)
    assert {'optimizer', 'lr_scheduler'} <= last.keys()


def oracle_accuracy(checkpoint, data_root):
    """acc@1 and mean cross-entropy on the val split, computed without the training code: timm
    builds the model from the checkpoint, images are normalised by hand (32-pixel inputs are not
    resized at evaluation)."""
    model = timm.create_model('gfnet_h_ti', pretrained=True, pretrained_cfg_overlay=dict(file=checkpoint),
                              num_classes=len(COLOURS), img_size=IMAGE_SIZE, embed_dims=EMBED_DIMS, depths=DEPTHS)
    model.eval()
    mean, std = np.array(IMAGENET_DEFAULT_MEAN), np.array(IMAGENET_DEFAULT_STD)
    images, labels = [], []
    val_root = os.path.join(data_root, 'val')
    for label, class_name in enumerate(sorted(os.listdir(val_root))):
        for name in sorted(os.listdir(os.path.join(val_root, class_name))):
            pixels = np.asarray(Image.open(os.path.join(val_root, class_name, name)).convert('RGB')) / 255.
            images.append(torch.from_numpy((pixels - mean) / std).permute(2, 0, 1).float())
            labels.append(label)
    with torch.no_grad():
        logits = model(torch.stack(images))
    labels = torch.tensor(labels)
    return 100. * (logits.argmax(1) == labels).float().mean().item(), F.cross_entropy(logits, labels).item()


def test_eval_reports_accuracy_of_the_checkpoint(cli_run, image_data, capsys):
    output_dir, _ = cli_run
    best = os.path.join(output_dir, 'checkpoint_best.pth')
    stats = main([*TINY_MODEL, '--data-path', image_data, '--eval', '--resume', best])
    printed = capsys.readouterr().out
    assert '* Acc@1' in printed and 'Acc@5' in printed and 'loss' in printed

    acc1, loss = oracle_accuracy(best, image_data)
    assert math.isclose(stats['acc1'], acc1, abs_tol=1e-4)
    assert math.isclose(stats['loss'], loss, rel_tol=1e-4)
    assert math.isclose(stats['acc1'], read_log(output_dir)[-1]['max_accuracy'], abs_tol=1e-4)


class FixedLogits(torch.nn.Module):
    """A 'model' whose input is a sample index and whose output is that sample's stored logits."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, index):
        return self.logits[index]


def test_evaluate_counts_top1_top5_and_loss_over_uneven_batches():
    """acc@1, acc@5 and the mean cross-entropy of ``evaluate`` against NumPy, with 12 classes (so
    that top-5 can miss) and batches of 7, 7, 7 and 2 samples."""
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(23, 12)) * 2, rng.integers(0, 12, 23)
    loader = DataLoader(TensorDataset(torch.arange(23), torch.from_numpy(labels)), batch_size=7)
    stats = evaluate(FixedLogits(torch.from_numpy(logits).float()), loader, torch.device('cpu'))

    rank = (logits > logits[np.arange(23), labels][:, None]).sum(1)  # classes scored above the label
    shifted = logits - logits.max(1, keepdims=True)
    cross_entropy = -(shifted[np.arange(23), labels] - np.log(np.exp(shifted).sum(1)))
    assert 0 < (rank < 1).mean() < (rank < 5).mean() < 1  # neither check is trivial here
    assert stats['images'] == 23
    assert stats['acc1'] == pytest.approx(100 * (rank < 1).mean(), abs=1e-4)
    assert stats['acc5'] == pytest.approx(100 * (rank < 5).mean(), abs=1e-4)
    assert stats['loss'] == pytest.approx(cross_entropy.mean(), rel=1e-5)
