"""No window in which a segmentation run can lose its last checkpoint: a kill during a save with
``max_keep_ckpts=1``, a full disk, a ``last_checkpoint`` naming a truncated file, temporary files
left by a killed save, and truncated checkpoints given explicitly."""
import copy
import errno
import hashlib
import logging
import os
import signal

import pytest
import torch
from mmengine.logging import MMLogger

from gfnet_seg import apis
from gfnet_seg.fileio import IncompleteFileError, WriteError
from gfnet_seg.models.backbones import GFNetH
from seg_utils import failure, run_tool, write_tiny_config

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A checkpoint every 2 iterations and only the newest kept: mmengine's CheckpointHook deletes
# iter_2.pth before it writes iter_4.pth.
KEEP_ONE = """
train_cfg = dict(max_iters=4, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=1))
"""
# SIGKILL halfway through writing the bytes of iter_4.pth.
KILL_DURING_SECOND_SAVE = f"""
sys.path.insert(0, {TESTS_DIR!r})
from kill_utils import die_halfway_through_next_write
class Injected(Hook):
    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == 4:
            die_halfway_through_next_write()
"""
IN_THIS_PROCESS = {f'{split}_dataloader.{key}': value for split in ('train', 'val', 'test')
                   for key, value in (('num_workers', 0), ('persistent_workers', False))}


def digest(path) -> str:
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


class FullDisk:
    """What ``os.fdopen`` returns on a full disk: a file whose writes fail with ENOSPC."""

    def __init__(self, fd, *args, **kwargs):
        os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_kill_during_save_keeps_a_checkpoint_then_full_disk_keeps_it_too(tmp_path, synthetic_root, monkeypatch):
    """max_keep_ckpts=1 and a SIGKILL while iter_4.pth is written: iter_2.pth is still there and
    loads. The resumed run removes the killed save's temporary file, and when its own save of
    iter_4.pth fails with ENOSPC it stops naming the file and iter_2.pth, which is unchanged."""
    config = write_tiny_config(tmp_path, synthetic_root, KEEP_ONE)
    work_dir = tmp_path / 'work'
    result = run_tool(['train.py', config, '--work-dir', work_dir], hook=KILL_DURING_SECOND_SAVE)
    assert result.returncode == -signal.SIGKILL, failure(result)
    kept = work_dir / 'iter_2.pth'
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_2.pth']
    assert torch.load(kept, weights_only=True)['meta']['iter'] == 2
    assert (work_dir / 'last_checkpoint').read_text() == str(kept)
    (temporary,) = work_dir.glob('.iter_4.pth.*.tmp')
    kept_digest = digest(kept)

    cfg = apis.setup_train(apis.load_config(config, IN_THIS_PROCESS, str(work_dir)), resume=True)
    runner = apis.build_runner(cfg)
    monkeypatch.setattr(os, 'fdopen', FullDisk)
    with pytest.raises(WriteError) as error:
        runner.train()
    assert str(error.value) == (f'cannot write {work_dir / "iter_4.pth"}: No space left on device; training '
                                f'stopped (last checkpoint kept: {kept}). Free some space, then continue with '
                                '--resume')
    log = (work_dir / runner.timestamp / f'{runner.timestamp}.log').read_text()
    assert f'removed 1 temporary file(s) left in {work_dir} by a save that was interrupted: {temporary.name}' in log
    # No temporary file is left, neither the killed save's nor the failed one's.
    assert [p.name for p in work_dir.glob('.*')] == [] and [p.name for p in work_dir.glob('*.pth')] == ['iter_2.pth']
    assert digest(kept) == kept_digest


def checkpoint(path, iteration):
    torch.save({'meta': {'iter': iteration}, 'state_dict': {'w': torch.full((256,), float(iteration))}}, path)
    return str(path)


def truncate(path, keep=0.5):
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:int(len(data) * keep)])
    return str(path)


@pytest.fixture
def logged():
    """The lines mmengine's current logger receives during the test."""
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_resume_falls_back_to_newest_complete_checkpoint(tmp_path, synthetic_root, logged):
    config = write_tiny_config(tmp_path, synthetic_root)
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    for iteration in (2, 4, 6):
        checkpoint(work_dir / f'iter_{iteration}.pth', iteration)
        os.utime(work_dir / f'iter_{iteration}.pth', (iteration, iteration))  # written in this order
    pointer = work_dir / 'last_checkpoint'

    cfg = apis.load_config(config, work_dir=str(work_dir))

    def resume_from():
        return apis.setup_train(copy.deepcopy(cfg), resume=True).load_from

    pointer.write_text(str(work_dir / 'iter_6.pth'))
    assert resume_from() is None  # a sound pointer: mmengine resumes from it as usual
    truncate(work_dir / 'iter_6.pth')
    assert resume_from() == str(work_dir / 'iter_4.pth')
    printed = '\n'.join(logged)
    assert f'--resume: skipping {work_dir / "iter_6.pth"}, which {pointer} names: it is truncated' in printed
    assert f'--resume: resuming from {work_dir / "iter_4.pth"}, the newest complete checkpoint' in printed

    pointer.write_text(str(work_dir / 'iter_8.pth'))  # a file that is gone
    truncate(work_dir / 'iter_4.pth', keep=0)
    assert resume_from() == str(work_dir / 'iter_2.pth')
    printed = '\n'.join(logged)
    assert f'skipping {work_dir / "iter_8.pth"}, which {pointer} names: it does not exist' in printed
    assert f'skipping {work_dir / "iter_4.pth"}: it is empty (0 bytes)' in printed
    assert f'skipping {work_dir / "iter_6.pth"}: it is truncated' in printed

    truncate(work_dir / 'iter_2.pth')
    with pytest.raises(FileNotFoundError, match=f'no complete checkpoint in {work_dir}.*delete {pointer}'):
        resume_from()


def test_truncated_checkpoint_given_explicitly_is_named_in_one_line(tmp_path, synthetic_root):
    """``--resume`` with ``load_from``, ``tools/test.py`` and a backbone's ``init_cfg``."""
    config = write_tiny_config(tmp_path, synthetic_root)
    path = truncate(checkpoint(tmp_path / 'iter_4.pth', 4))
    message = f'checkpoint {path} is truncated'
    cfg = apis.load_config(config, {'load_from': path}, str(tmp_path / 'work'))
    with pytest.raises(IncompleteFileError, match=message):
        apis.setup_train(cfg, resume=True)
    with pytest.raises(IncompleteFileError, match=message):
        apis.setup_test(apis.load_config(config, work_dir=str(tmp_path / 'work')), path)
    backbone = GFNetH(dict(embed_dims=[8, 8, 16, 16], depths=[1, 1, 1, 1], layer_scale_init=1e-3), img_size=32,
                      init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(IncompleteFileError, match=message):
        backbone.init_weights()
    assert issubclass(IncompleteFileError, apis.USER_ERRORS)  # the tools print it in one line
