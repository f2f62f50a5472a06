"""Shared test set-up: the package (and its compatibility layer) is imported before mmseg."""
import os
import sys

import pytest
import torch

import gfnet_seg  # noqa: F401  (installs the mmcv-lite layer, registers models)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope='session')
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope='session')
def python():
    """The interpreter running the tests, for tools launched as subprocesses."""
    return sys.executable
