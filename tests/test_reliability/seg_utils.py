"""What the segmentation reliability tests share: a tiny GFNet-H config over the synthetic one,
the tools run as subprocesses (optionally with a test-only hook slipped into the runner), and
checkpoint reading."""
import os
import subprocess
import sys
import tempfile
import textwrap

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNTHETIC_CONFIG = os.path.join(REPO_ROOT, 'configs', 'sem_fpn', 'fpn_gfnet-h-ti_1xb2-300_synthetic-128x128.py')

# The synthetic config (its pipeline, schedule and runtime hooks) at GFNet-H-Ti's shape with
# tiny widths, so that a training iteration takes milliseconds.
TINY_CONFIG = """
_base_ = [{base!r}]
data_root = {data_root!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=[8, 8, 16, 16], depths=[1, 1, 1, 1], layer_scale_init=1e-3)),
    neck=dict(in_channels=[8, 8, 16, 16], out_channels=16),
    decode_head=dict(in_channels=[16, 16, 16, 16], channels=16, norm_cfg=dict(type='BN')))
default_hooks = dict(logger=dict(interval=1))
"""

# Runs a tool as ``python -c`` would run the file, with ``Injected`` (a Hook defined by the test)
# registered in the runner before training starts.
_WITH_HOOK = """
import os, runpy, signal, sys
import torch
import gfnet_seg
from mmengine.hooks import Hook
from mmengine.runner import Runner
{hook}
_train = Runner.train
def train(runner):
    runner.register_hook(Injected())
    return _train(runner)
Runner.train = train
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def write_tiny_config(folder, data_root, extra: str = '') -> str:
    """Write the tiny config to ``folder``, and beside it a config that inherits it and adds
    ``extra`` (config lines, merged as a child config's are); returns the latter's path."""
    (folder / 'tiny.py').write_text(TINY_CONFIG.format(base=SYNTHETIC_CONFIG, data_root=str(data_root)))
    (folder / 'config.py').write_text("_base_ = ['./tiny.py']\n" + textwrap.dedent(extra))
    return str(folder / 'config.py')


class Tool:
    """``tools/<args[0]>`` with the rest of ``args``, started from the repository root, with
    ``hook`` (source defining a Hook named ``Injected``) registered in its runner if given.

    Output goes to temporary files, so that runs started side by side never block on a full pipe.
    One intra-op thread each: the runs of a test share the machine's cores.
    """

    def __init__(self, args, hook: str = None):
        tool = os.path.join(REPO_ROOT, 'tools', args[0])
        prefix = [sys.executable, '-c', _WITH_HOOK.format(hook=textwrap.dedent(hook))] if hook else [sys.executable]
        self.stdout, self.stderr = tempfile.TemporaryFile('w+'), tempfile.TemporaryFile('w+')
        self.process = subprocess.Popen([*prefix, tool, *map(str, args[1:])], cwd=REPO_ROOT,
                                        stdout=self.stdout, stderr=self.stderr,
                                        env=dict(os.environ, OMP_NUM_THREADS='1'))

    def wait(self, timeout: int = 300) -> subprocess.CompletedProcess:
        returncode = self.process.wait(timeout)
        output = []
        for file in (self.stdout, self.stderr):
            file.seek(0)
            output.append(file.read())
            file.close()
        return subprocess.CompletedProcess(self.process.args, returncode, *output)


def run_tool(args, hook: str = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a tool (see ``Tool``) to the end."""
    return Tool(args, hook).wait(timeout)


def weights(checkpoint_path) -> dict:
    """The model weights of an mmengine checkpoint, read as a resume would: weights_only."""
    return torch.load(checkpoint_path, map_location='cpu', weights_only=True)['state_dict']


def failure(result: subprocess.CompletedProcess) -> str:
    return f'exit code {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
