"""The tools' torchrun launchers as the tests start them: CPU processes (gloo) on a free port."""
import os
import socket
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_distributed(script: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``bash tools/<script> ARGS`` from the repository root with this interpreter, one intra-op
    thread per process (the processes share the machine's cores)."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    return subprocess.run(['bash', os.path.join(REPO_ROOT, 'tools', script), *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)
