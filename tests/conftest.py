"""Shared test set-up: the package (and its compatibility layer) is imported before mmseg."""
import os
import sys

import pytest
import torch

import gfnet_seg  # noqa: F401  (installs the mmcv-lite layer, registers models)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
torch.set_num_threads(min(2, os.cpu_count() or 1))
FFT_FUNCTIONS = ('rfft2', 'irfft2', 'rfft', 'irfft', 'fft', 'ifft', 'fft2', 'ifft2')


@pytest.fixture
def fft_inputs(monkeypatch):
    """The dtype of every tensor handed to a transform, torch.fft's or the eager filter's (pocketfft on
    CPU): real float32 into a forward, complex64 into an inverse transform in single precision."""
    from gfnet_seg.models import global_filter
    seen = []
    transforms = [(torch.fft, name) for name in FFT_FUNCTIONS]
    transforms += [(global_filter, 'forward_transform'), (global_filter, 'inverse_transform')]
    for owner, name in transforms:
        original = getattr(owner, name)

        def record(tensor, *args, _original=original, **kwargs):
            seen.append(tensor.dtype)
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(owner, name, record)
    return seen


@pytest.fixture(params=['pocketfft', 'torch.fft'])
def cpu_fft(request, monkeypatch):
    """Runs a test once with each CPU transform of the eager filter, whatever the grid size; yields the
    calls that reached pocketfft, so a test can check which one ran."""
    from gfnet_seg.models import global_filter
    if request.param == 'pocketfft' and global_filter.pocketfft is None:
        pytest.skip('scipy is not installed: pocketfft is not used')
    monkeypatch.setattr(global_filter, 'POCKETFFT_MIN_GRID', 1 if request.param == 'pocketfft' else 2 ** 62)
    calls = []
    if global_filter.pocketfft is not None:
        for name in ('rfft2', 'irfft2'):
            original = getattr(global_filter.pocketfft, name)
            monkeypatch.setattr(global_filter.pocketfft, name,
                                lambda *args, _original=original, _name=name, **kwargs: (
                                    calls.append(_name), _original(*args, **kwargs))[1])
    yield request.param, calls


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope='session')
def python():
    """The interpreter running the tests, for tools launched as subprocesses."""
    return sys.executable
