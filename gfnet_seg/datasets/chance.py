"""What mIoU a predictor gets without looking at the image: the bar a trained model must clear.

mIoU has no single "chance" value: it depends on how the blind predictor spreads its guesses
over the classes and on how often each class occurs. We take the best of three image-blind
strategies, in expectation, with mmseg's IoUMetric conventions (areas summed over the data
set, a class that is neither predicted nor present is left out of the mean):

* ``uniform``: every pixel a uniformly random class;
* ``prior``: every pixel a random class drawn with the ground-truth class frequencies;
* ``majority``: every pixel the most frequent class.
"""
import glob
import os.path as osp
from typing import Dict

import numpy as np
from PIL import Image

IGNORE_INDEX = 255


def class_pixel_counts(seg_map_dir: str, num_classes: int, reduce_zero_label: bool = True,
                       suffix: str = '.png') -> np.ndarray:
    """Pixels per class over every annotation in ``seg_map_dir``, as mmseg will see them."""
    paths = sorted(glob.glob(osp.join(seg_map_dir, '*' + suffix)))
    if not paths:
        raise FileNotFoundError(f'no *{suffix} annotation in {seg_map_dir}')
    counts = np.zeros(num_classes, np.int64)
    for path in paths:
        try:  # as mmseg's LoadAnnotations reads it: a palette PNG gives its indices
            label = np.asarray(Image.open(path), np.int64)
        except OSError:
            raise ValueError(f'cannot read annotation {path}') from None
        if reduce_zero_label:  # mmseg's LoadAnnotations: 0 -> ignore, c -> c - 1
            label = np.where(label == 0, IGNORE_INDEX, label - 1)
        label = label[label != IGNORE_INDEX]
        if label.size and label.max() >= num_classes:
            raise ValueError(f'{path} has label {label.max()} but the data set has {num_classes} classes')
        counts += np.bincount(label, minlength=num_classes)
    return counts


def chance_miou(counts) -> Dict[str, float]:
    """Expected mIoU (a fraction) of each blind strategy, and their best as ``chance``.

    ``counts`` is the number of ground-truth pixels per class.
    """
    freq = np.asarray(counts, np.float64)
    if freq.sum() <= 0:
        raise ValueError('no labelled pixel to compute chance on')
    freq = freq / freq.sum()
    num_classes = len(freq)
    present = freq > 0
    # uniform: TP_c = p_c / K, union_c = p_c + 1/K - p_c/K; every class is predicted, so all count.
    uniform = np.mean(freq / (num_classes * freq + 1 - freq))
    # prior: TP_c = p_c^2, union_c = 2 p_c - p_c^2; absent classes are never predicted.
    prior = np.mean(freq[present] / (2 - freq[present]))
    # majority: IoU = p_max for that class and 0 for the other present ones.
    majority = freq.max() / present.sum()
    result = dict(uniform=float(uniform), prior=float(prior), majority=float(majority))
    result['chance'] = max(result.values())
    return result
