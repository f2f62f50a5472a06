"""Shared test set-up: the package (and its compatibility layer) is imported before mmseg."""
import os
import sys

import pytest
import torch

import gfnet_seg  # noqa: F401  (installs the mmcv-lite layer, registers models)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# make test runs two pytest-xdist workers, one per core: one intra-op thread each (two would
# oversubscribe the cores); a plain pytest run takes up to two.
torch.set_num_threads(1 if os.environ.get('PYTEST_XDIST_WORKER') else min(2, os.cpu_count() or 1))
FFT_FUNCTIONS = ('rfft2', 'irfft2', 'rfft', 'irfft', 'fft', 'ifft', 'fft2', 'ifft2')


@pytest.fixture(autouse=True)
def _default_scope_is_restored():
    """Each test starts from the default scope the session had: mmdet's DetInferencer, a Runner
    or ``init_default_scope`` create a current ``DefaultScope`` that outlives the test, and a
    later test in the same worker (which one depends on pytest-xdist's scheduling) then builds
    mmseg transforms in mmdet's registry."""
    from mmengine.registry import DefaultScope
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


@pytest.fixture
def fft_inputs(monkeypatch):
    """The dtype of every tensor handed to a torch.fft transform (real float32 into a forward,
    complex64 into an inverse transform when the FFT runs in single precision)."""
    seen = []
    for name in FFT_FUNCTIONS:
        original = getattr(torch.fft, name)

        def record(tensor, *args, _original=original, **kwargs):
            seen.append(tensor.dtype)
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.fft, name, record)
    return seen


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope='session')
def python():
    """The interpreter running the tests, for tools launched as subprocesses."""
    return sys.executable
