"""Session fixtures: the generated ADE20K-layout data set, small enough for seconds-long runs."""
import pytest

from gfnet_seg.datasets import make_synthetic_ade20k


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """8 training and 3 (an odd number) validation images, 64 pixels high."""
    root = tmp_path_factory.mktemp('synthetic_ade')
    make_synthetic_ade20k(str(root), num_train=8, num_val=3, size=64, progress=False)
    return root
