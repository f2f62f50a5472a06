"""A segmentation run killed between checkpoints and resumed with --resume ends with the weights
of an uninterrupted run: data order, augmentation (random resize, crop, flip, photometric
distortion in the loader workers), dropout, optimizer and schedule all pick up where they were."""
import signal

import torch
from mmengine.logging import HistoryBuffer

from seg_utils import Tool, failure, run_tool, weights, write_tiny_config

# 6 iterations, a checkpoint every 3, validation after the 4th; the kill comes after the 5th,
# so iterations 4 and 5 (and a validation) are lost and done again from iter_3.pth.
SCHEDULE = """
train_cfg = dict(max_iters=6, val_interval=4)
default_hooks = dict(checkpoint=dict(interval=3))
"""
KILL_AFTER = 5
KILL_HOOK = f"""
class Injected(Hook):
    priority = 'LOWEST'  # after the checkpoint hook
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == {KILL_AFTER}:
            os.kill(os.getpid(), signal.SIGKILL)
"""


def test_killed_and_resumed_run_ends_with_uninterrupted_weights(tmp_path, synthetic_root):
    config = write_tiny_config(tmp_path, synthetic_root, SCHEDULE)
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'

    straight_run = Tool(['train.py', config, '--work-dir', straight])
    result = run_tool(['train.py', config, '--work-dir', resumed], hook=KILL_HOOK)
    assert result.returncode == -signal.SIGKILL, failure(result)
    assert (resumed / 'iter_3.pth').is_file() and not (resumed / 'iter_6.pth').exists()

    result = run_tool(['train.py', config, '--work-dir', resumed, '--resume'])
    assert result.returncode == 0, failure(result)
    assert f'resumed from the latest checkpoint {resumed / "iter_3.pth"}' in result.stdout + result.stderr
    result = straight_run.wait()
    assert result.returncode == 0, failure(result)

    # weights_only=True, as torch >= 2.6 loads by default: the resume just read such a file,
    # and its message hub (HistoryBuffer, numpy scalars) passes the allow-list.
    resumed_checkpoint = torch.load(resumed / 'iter_6.pth', weights_only=True)
    assert isinstance(resumed_checkpoint['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    expected = weights(straight / 'iter_6.pth')
    assert resumed_checkpoint['state_dict'].keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(resumed_checkpoint['state_dict'][key], value), key
    # The run learnt something between the two: identical weights are not the initial ones.
    assert not torch.equal(weights(resumed / 'iter_3.pth')['decode_head.conv_seg.weight'],
                           expected['decode_head.conv_seg.weight'])
