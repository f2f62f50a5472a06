"""Atomic checkpoint writes, per-iteration seeding and the invalid-loss stop."""
import signal
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging import MessageHub

from gfnet_seg.engine import AtomicLocalBackend, IterationSeedHook, StopOnInvalidLossHook


def test_kill_during_save_keeps_previous_checkpoint(tmp_path):
    """A process SIGKILLed halfway through writing leaves the earlier file whole and loadable."""
    path = tmp_path / 'iter_10.pth'
    script = textwrap.dedent(f"""
        import os, signal, torch
        import gfnet_seg
        from mmengine.fileio import get_file_backend
        from mmengine.runner.checkpoint import save_checkpoint
        save_checkpoint({{'state_dict': {{'w': torch.ones(1000)}}}}, {str(path)!r},
                        backend_args=dict(backend='atomic_local'))
        class Dying:
            def __init__(self, f): self.f = f
            def __enter__(self): return self
            def __exit__(self, *a): return False
            def write(self, data):
                self.f.write(data[:len(data) // 2]); self.f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        real_fdopen = os.fdopen
        os.fdopen = lambda fd, mode: Dying(real_fdopen(fd, mode))
        save_checkpoint({{'state_dict': {{'w': torch.zeros(1000)}}}}, {str(path)!r},
                        backend_args=dict(backend='atomic_local'))
    """)
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120)
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
    hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(1.0)})  # finite: nothing happens
    with pytest.raises(FloatingPointError, match=r'at iteration 124.*iter_100.pth'):
        hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(bad)})
