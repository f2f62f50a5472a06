"""tools/dist_train_cls.sh: two CPU processes under torchrun (gloo) train as one process does with
the same total batch: the same loss at every iteration, the same weights, the same evaluation."""
import os
import re

import pytest
import torch

from gfnet_seg.classification import main

from cls_utils import ARCH, TINY_FLAGS, read_log
from launch_utils import run_distributed

# Nothing random that differs between one and two processes: no augmentation (each process draws
# its own), no mixup, no stochastic depth. The repeated-augmentation sampler stays: it deals the
# same shuffled order to any number of processes.
SAME_ON_ANY_WORLD = [*TINY_FLAGS, '--no-aug', '--mixup', '0', '--cutmix', '0', '--drop-path', '0',
                     '--lr', '2e-3', '--unscale-lr', '--warmup-epochs', '0', '--epochs', '1', '--log-interval', '1']
ITERATION_LOSS = re.compile(r'Epoch \[0\]\[(\d+)/\d+\].*?  loss (\S+) ')


def iteration_losses(stdout):
    return {int(step): float(loss) for step, loss in ITERATION_LOSS.findall(stdout)}


def test_two_processes_match_one_with_the_same_total_batch(tmp_path, image_data, capsys):
    two, one = str(tmp_path / 'two'), str(tmp_path / 'one')
    result = run_distributed('dist_train_cls.sh', ARCH, 2, *SAME_ON_ANY_WORLD, '--data-path', image_data,
                             '--output_dir', two, '--batch-size', 8, '--dist-eval')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'on 2 process(es)' in result.stdout

    main([*SAME_ON_ANY_WORLD, '--data-path', image_data, '--output_dir', one, '--batch-size', '16'])
    # The log lines average the loss over the processes: the curve of the whole batch.
    losses_two, losses_one = iteration_losses(result.stdout), iteration_losses(capsys.readouterr().out)
    assert sorted(losses_one) == [1, 2, 3, 4] and losses_two.keys() == losses_one.keys()
    for step, loss in losses_one.items():
        assert losses_two[step] == pytest.approx(loss, abs=2e-4), step  # printed with 4 decimals
    torch.testing.assert_close(torch.load(os.path.join(two, 'checkpoint.pth'), weights_only=True)['model'],
                               torch.load(os.path.join(one, 'checkpoint.pth'), weights_only=True)['model'])

    # --dist-eval shards the 33 val images without padding; the summed result is that of one
    # process evaluating the whole split.
    (log_two,), (log_one,) = read_log(two), read_log(one)
    assert log_two['test_images'] == log_one['test_images'] == 33
    assert log_two['test_acc1'] == pytest.approx(log_one['test_acc1'], abs=1e-4)
    for key in ('train_loss', 'test_loss'):
        assert log_two[key] == pytest.approx(log_one[key], rel=1e-5), key
