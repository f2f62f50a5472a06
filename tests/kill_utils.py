"""Real crashes for tests: a fresh interpreter that SIGKILLs itself at a chosen point, so that no
``finally``, ``atexit`` or flush runs afterwards, as after ``kill -9`` or the out-of-memory killer."""
import os
import signal
import subprocess
import sys

import torch

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def die_halfway_through_next_write() -> None:
    """Let the next file opened by ``os.fdopen`` (as ``gfnet_seg.fileio`` opens its temporary
    file) receive half of the first data written to it, then SIGKILL this process."""
    real_fdopen = os.fdopen

    class DyingFile:
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return False

        def write(self, data):
            self.file.write(data[:len(data) // 2])
            self.file.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    os.fdopen = lambda fd, *args, **kwargs: DyingFile(real_fdopen(fd, *args, **kwargs))


def run_script(script: str, cwd: str = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``script`` in a new interpreter that can ``import kill_utils``, with as many threads as
    this one (so that its float results match a run in this process)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()),
               PYTHONPATH=os.pathsep.join(filter(None, [TESTS_DIR, os.environ.get('PYTHONPATH')])))
    return subprocess.run([sys.executable, '-c', script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
