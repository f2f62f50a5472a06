"""Two processes (torchrun, gloo on CPU) train and evaluate as one process does.

Training: with the total batch split over the processes, the InfiniteSampler hands each process
its share of the one seeded order, and DDP averages the gradients, so the weights after a few
iterations match a single process with the whole batch. Evaluation: the distributed sampler pads
an odd-sized val set, and the results are gathered and cut back, so every image counts once.
"""
import collections
import os
import pickle
import re

import torch

from launch_utils import run_distributed
from seg_utils import Tool, failure, weights, write_tiny_config

SIZE = 64
# The same images whatever the process count: a deterministic pipeline, no dropout, and
# GroupNorm in the head (BN statistics depend on the per-process batch by design, and SyncBN
# needs GPUs). SGD keeps round-off differences as small as they are (Adam's first steps are
# sign-like and would blow them up).
SAME_IMAGES = f"""
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=({SIZE}, {SIZE}), keep_ratio=False),
    dict(type='PackSegInputs')]))
model = dict(
    data_preprocessor=dict(size=({SIZE}, {SIZE})),
    backbone=dict(img_size=({SIZE}, {SIZE})),
    decode_head=dict(dropout_ratio=0.0, norm_cfg=dict(_delete_=True, type='GN', num_groups=4)))
optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.05, momentum=0.9))
train_cfg = dict(max_iters=4, val_interval=4)
default_hooks = dict(checkpoint=dict(interval=4))
test_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']), dict(type='DumpResults', out_file_path='')]
"""
METRICS = re.compile(r'Iter\((?:val|test)\).*aAcc: ([\d.]+)\s+mIoU: ([\d.]+)\s+mAcc: ([\d.]+)')


def test_two_processes_train_and_evaluate_as_one(tmp_path, synthetic_root):
    config = write_tiny_config(tmp_path, synthetic_root, SAME_IMAGES)
    single, double = tmp_path / 'single', tmp_path / 'double'

    single_run = Tool(['train.py', config, '--work-dir', single])
    result = run_distributed('dist_train.sh', config, 2, '--work-dir', double,
                             '--cfg-options', 'train_dataloader.batch_size=1')
    assert result.returncode == 0, failure(result)
    result = single_run.wait()
    assert result.returncode == 0, failure(result)
    expected, actual = weights(single / 'iter_4.pth'), weights(double / 'iter_4.pth')
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=1e-4, atol=1e-6, msg=key)

    # The single run validated iter_4's weights as its last step: the metrics to match.
    single_metrics = METRICS.findall(result.stdout + result.stderr)
    result = run_distributed('dist_test.sh', config, single / 'iter_4.pth', 2, '--work-dir', tmp_path / 'test',
                             '--cfg-options', f'test_evaluator.1.out_file_path={tmp_path / "results.pkl"}')
    assert result.returncode == 0, failure(result)
    assert len(single_metrics) == 1 and METRICS.findall(result.stdout + result.stderr) == single_metrics

    val_images = sorted(os.listdir(synthetic_root / 'images' / 'validation'))
    assert len(val_images) % 2 == 1  # the distributed sampler pads one
    with open(tmp_path / 'results.pkl', 'rb') as f:
        evaluated = collections.Counter(os.path.basename(r['img_path']) for r in pickle.load(f))
    assert evaluated == collections.Counter(val_images)
