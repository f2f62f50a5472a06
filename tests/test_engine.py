"""Atomic checkpoint writes, failed writes, incomplete checkpoints, per-iteration seeding and the
invalid-loss stop."""
import csv
import errno
import os
import signal
import textwrap
from types import SimpleNamespace

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging import MessageHub

from gfnet_seg.engine import AtomicLocalBackend, IterationSeedHook, StopOnInvalidLossHook
from gfnet_seg.fileio import (IncompleteFileError, WriteError, atomic_torch_save, atomic_write_csv,
                              checkpoint_problem, remove_temporary_files)
from gfnet_seg.models.checkpoint import read_checkpoint
from kill_utils import run_script


def test_kill_during_save_keeps_previous_checkpoint(tmp_path):
    """A process SIGKILLed halfway through writing leaves the earlier file whole and loadable."""
    path = tmp_path / 'iter_10.pth'
    script = textwrap.dedent(f"""
        import torch
        import gfnet_seg
        from mmengine.runner.checkpoint import save_checkpoint
        from kill_utils import die_halfway_through_next_write
        save_checkpoint({{'state_dict': {{'w': torch.ones(1000)}}}}, {str(path)!r},
                        backend_args=dict(backend='atomic_local'))
        die_halfway_through_next_write()
        save_checkpoint({{'state_dict': {{'w': torch.zeros(1000)}}}}, {str(path)!r},
                        backend_args=dict(backend='atomic_local'))
    """)
    result = run_script(script, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    checkpoint = torch.load(path, weights_only=True)
    assert torch.equal(checkpoint['state_dict']['w'], torch.ones(1000))


def test_atomic_backend_selected_by_backend_args(tmp_path):
    backend = get_file_backend(str(tmp_path), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put_text('hello', tmp_path / 'sub' / 'last_checkpoint')
    assert (tmp_path / 'sub' / 'last_checkpoint').read_text() == 'hello'
    assert [p.name for p in (tmp_path / 'sub').iterdir()] == ['last_checkpoint']  # no temp left


def test_iteration_seed_depends_only_on_seed_iteration():
    hook = IterationSeedHook()

    def draw(seed, iteration):
        torch.rand(7)  # whatever ran before must not matter
        hook.before_train_iter(SimpleNamespace(seed=seed, iter=iteration), batch_idx=iteration)
        return torch.rand(3)

    assert torch.equal(draw(0, 5), draw(0, 5))
    assert not torch.equal(draw(0, 5), draw(0, 6))
    assert not torch.equal(draw(0, 5), draw(1, 5))


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_invalid_loss_stops_with_iteration_number(bad):
    hub = MessageHub.get_instance('test_invalid_loss')
    hub.update_info('last_ckpt', '/work/run/iter_100.pth')
    runner = SimpleNamespace(iter=123, message_hub=hub, work_dir='/work/run')
    hook = StopOnInvalidLossHook()
    hook.before_train(runner)
    hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(1.0)})  # finite: nothing happens
    with pytest.raises(FloatingPointError, match=r'loss is \w+ at iteration 124.*iter_100.pth'):
        hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(bad)})


def test_checkpoint_with_non_finite_weights_is_never_saved():
    """A finite loss whose update overflowed: the save is refused, naming the tensor and the last
    checkpoint that was written (not the one the checkpoint hook was about to write)."""
    hub = MessageHub.get_instance('test_non_finite_weights')
    runner = SimpleNamespace(iter=7, message_hub=hub, work_dir='/work/run')
    hook = StopOnInvalidLossHook()
    hook.before_train(runner)
    hub.update_info('last_ckpt', '/work/run/iter_4.pth')
    hook.before_save_checkpoint(runner, {'meta': {'iter': 4}, 'state_dict': {'w': torch.ones(3)}})
    hub.update_info('last_ckpt', '/work/run/iter_8.pth')
    poisoned = {'meta': {'iter': 8}, 'state_dict': {'w': torch.ones(3), 'step': torch.tensor(8),
                                                    'head.weight': torch.tensor([1.0, float('inf')])}}
    with pytest.raises(FloatingPointError, match=r'weight head.weight is not finite at iteration 8.*'
                                                 r'last checkpoint kept: /work/run/iter_4.pth'):
        hook.before_save_checkpoint(runner, poisoned)


def full_disk(fd, *args, **kwargs):
    """``os.fdopen`` on a full disk."""
    os.close(fd)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_failed_write_names_the_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / 'iter_8.pth'
    atomic_torch_save({'w': torch.ones(3)}, str(path))

    monkeypatch.setattr(os, 'fdopen', full_disk)
    with pytest.raises(WriteError, match=f'^cannot write {path}: No space left on device$') as error:
        atomic_torch_save({'w': torch.zeros(3)}, str(path))
    assert error.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == ['iter_8.pth']
    assert torch.equal(torch.load(path, weights_only=True)['w'], torch.ones(3))


def test_csv_rows_under_their_header_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'rows.csv'
    atomic_write_csv(str(path), [{'model': 'a', 'ms': 1.5, 'note': 'dropped'}, {'ms': 2}], ('model', 'ms'))
    with open(path, newline='') as f:
        assert list(csv.DictReader(f)) == [{'model': 'a', 'ms': '1.5'}, {'model': '', 'ms': '2'}]

    monkeypatch.setattr(os, 'fdopen', full_disk)
    with pytest.raises(WriteError, match='^cannot write .*rows.csv: No space left on device$'):
        atomic_write_csv(str(path), [{'model': 'b', 'ms': 3}], ('model', 'ms'))
    assert os.listdir(tmp_path) == ['rows.csv'] and path.read_text() == 'model,ms\na,1.5\n,2\n'


def test_written_files_get_the_permissions_open_gives_or_keep_the_old_ones(tmp_path):
    """Not mkstemp's owner-only 0600: a new file is 0666 less the umask (as ``open`` makes it, the
    oracle here), a replaced one keeps its mode."""
    from gfnet_seg.fileio import atomic_write_bytes
    old = os.umask(0o027)
    try:
        with open(tmp_path / 'plain.txt', 'w'):
            pass
        expected = os.stat(tmp_path / 'plain.txt').st_mode & 0o777
    finally:
        os.umask(old)
    import gfnet_seg.fileio as fileio
    mask, fileio._UMASK = fileio._UMASK, 0o027
    try:
        atomic_write_bytes(str(tmp_path / 'new.bin'), b'x')
    finally:
        fileio._UMASK = mask
    assert os.stat(tmp_path / 'new.bin').st_mode & 0o777 == expected == 0o640
    os.chmod(tmp_path / 'new.bin', 0o604)
    atomic_write_csv(str(tmp_path / 'new.bin'), [dict(a=1)], ['a'])
    assert os.stat(tmp_path / 'new.bin').st_mode & 0o777 == 0o604
    assert (tmp_path / 'new.bin').read_text() == 'a\n1\n'


def test_temporary_files_of_killed_saves_are_found_by_name(tmp_path):
    """Only names that ``atomic_write_bytes`` gives its temporary files are removed."""
    theirs = ['.iter_4.pth.k2_8zq0a.tmp', '.last_checkpoint.abcdefgh.tmp']
    others = ['iter_4.pth', 'notes.tmp', '.iter_4.pth.short.tmp', '.hidden', 'iter_4.pth.abcdefgh.tmp']
    for name in theirs + others:
        (tmp_path / name).write_text('x')
    assert remove_temporary_files(str(tmp_path)) == sorted(theirs)
    assert sorted(os.listdir(tmp_path)) == sorted(others)
    assert remove_temporary_files(str(tmp_path / 'missing')) == []


def test_incomplete_checkpoints_are_told_apart_from_whole_ones(tmp_path):
    """A cut at any point, an empty file and a flipped byte; a file torch.load reads is whole."""
    path = tmp_path / 'whole.pth'
    torch.save({'state_dict': {'w': torch.arange(4096.)}, 'meta': {'iter': 3}}, path)
    data = path.read_bytes()
    assert checkpoint_problem(str(path)) == ''
    for keep in (0, 1, len(data) // 2, len(data) - 1):
        cut = tmp_path / f'cut_{keep}.pth'
        cut.write_bytes(data[:keep])
        with pytest.raises(Exception):
            torch.load(cut, weights_only=True)  # torch agrees that the file is unreadable
        assert checkpoint_problem(str(cut)).startswith('is empty' if keep == 0 else 'is truncated'), keep
        with pytest.raises(IncompleteFileError, match=f'^checkpoint {cut} is '):
            read_checkpoint(str(cut))  # the models' reader names it in one line
    flipped = bytearray(data)
    flipped[data.index(b'data/0') + 200] ^= 0xFF  # inside the tensor's bytes
    (tmp_path / 'flipped.pth').write_bytes(bytes(flipped))
    assert 'fails its CRC check' in checkpoint_problem(str(tmp_path / 'flipped.pth'))
    legacy = tmp_path / 'legacy.pth'
    torch.save({'w': torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    assert checkpoint_problem(str(legacy)) == ''  # cannot be checked without unpickling: passes
    assert checkpoint_problem(str(tmp_path / 'missing.pth')) == 'does not exist'
