"""One synthetic data set, one short training run and its evaluation, shared by the tool tests."""
import os
from types import SimpleNamespace

import pytest

from gfnet_seg.datasets import make_synthetic_ade20k

from tool_utils import CONFIG, TINY_MODEL, as_flags, data_options, dumped_metrics, run_tool

TRAIN_ITERS = 200
# 10x the synthetic config's rate: the tiny model learns the textures in 200 iterations.
FAST_SCHEDULE = {'optim_wrapper.optimizer.lr': 3e-3, 'train_cfg.max_iters': TRAIN_ITERS,
                 'train_cfg.val_interval': TRAIN_ITERS, 'default_hooks.checkpoint.interval': TRAIN_ITERS,
                 'param_scheduler.0.end': TRAIN_ITERS}


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """32 training and 8 validation images, 64 pixels high and 64 to 96 wide: the test pipeline
    resizes them to 128 x (128 to 192), sizes that are mostly not multiples of 32."""
    root = tmp_path_factory.mktemp('synthetic')
    make_synthetic_ade20k(str(root), num_train=32, num_val=8, size=64, progress=False)
    return root


@pytest.fixture(scope='session')
def trained(tmp_path_factory, synthetic_root):
    """``tools/train.py`` on the tiny model; the work dir and its final checkpoint."""
    work_dir = tmp_path_factory.mktemp('train')
    options = {**TINY_MODEL, **data_options(synthetic_root), **FAST_SCHEDULE}
    run_tool('train.py', CONFIG, '--work-dir', work_dir, *as_flags(options))
    checkpoint = work_dir / f'iter_{TRAIN_ITERS}.pth'
    assert checkpoint.is_file(), sorted(os.listdir(work_dir))
    return SimpleNamespace(work_dir=work_dir, checkpoint=checkpoint)


@pytest.fixture(scope='session')
def tested(tmp_path_factory, synthetic_root, trained):
    """``tools/test.py`` on the trained checkpoint, keeping the predicted maps (``--out``) and
    the painted predictions (``--show-dir``); the metrics it reported and those folders."""
    root = tmp_path_factory.mktemp('test')
    run = SimpleNamespace(work_dir=root / 'work', out=root / 'maps', show_dir=root / 'show')
    run_tool('test.py', CONFIG, trained.checkpoint, '--work-dir', run.work_dir, '--out', run.out,
             '--show-dir', run.show_dir, *as_flags({**TINY_MODEL, **data_options(synthetic_root)}))
    run.metrics = dumped_metrics(run.work_dir)
    return run
