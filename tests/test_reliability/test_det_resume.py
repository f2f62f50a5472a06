"""A detection run (epoch-based, mmdet's loop) killed in the middle of an epoch and resumed with
--resume ends with the weights of an uninterrupted one: the same hooks and guarantees as for
segmentation (SafeCheckpointHook, IterationSeedHook for dropout and drop path, the allow-listed
weights_only load)."""
import signal

import pytest
import torch

from gfnet_seg.datasets.synthetic_coco import make_synthetic_coco

from det_utils import schedule, write_tiny_detector
from seg_utils import Tool, failure, run_tool, weights

EPOCHS = 3
# The kill comes in the middle of the second epoch (after its second iteration): that epoch's
# work is lost and done again from epoch_1.pth.
KILL_HOOK = """
class Injected(Hook):
    priority = 'LOWEST'  # after the checkpoint hook
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.epoch == 1 and batch_idx == 1:
            os.kill(os.getpid(), signal.SIGKILL)
"""
# Loading in the main process without the random flip (whose NumPy state a resumed process cannot
# have): the data order is the sampler's, seeded per epoch. (A loader worker of the killed process
# outlives it.)
LOADER = """
train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(256, 160), keep_ratio=True), dict(type='PackDetInputs')]))
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
"""


@pytest.fixture(scope='module')
def small_coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('small_coco')
    make_synthetic_coco(str(root), num_train=10, num_val=2, size=96, seed=1, progress=False)
    return root


def test_killed_and_resumed_detection_run_ends_with_uninterrupted_weights(tmp_path, small_coco):
    config = write_tiny_detector(tmp_path, small_coco, schedule(EPOCHS, warmup_iters=2) + LOADER)
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'

    straight_run = Tool(['train.py', config, '--work-dir', straight])
    result = run_tool(['train.py', config, '--work-dir', resumed], hook=KILL_HOOK)
    assert result.returncode == -signal.SIGKILL, failure(result)
    assert (resumed / 'epoch_1.pth').is_file() and not (resumed / 'epoch_2.pth').exists()

    result = run_tool(['train.py', config, '--work-dir', resumed, '--resume'])
    assert result.returncode == 0, failure(result)
    assert f'resumed from the latest checkpoint {resumed / "epoch_1.pth"}' in result.stdout + result.stderr
    result = straight_run.wait()
    assert result.returncode == 0, failure(result)

    expected = weights(straight / f'epoch_{EPOCHS}.pth')  # weights_only, as --resume read epoch_1.pth
    got = weights(resumed / f'epoch_{EPOCHS}.pth')
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    # the run learnt something in between: identical weights are not the first epoch's
    key = 'roi_head.bbox_head.fc_cls.weight'
    assert not torch.equal(weights(resumed / 'epoch_1.pth')[key], expected[key])
