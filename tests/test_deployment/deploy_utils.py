"""What the deployment tests share: the tiny models, the sizes, saving a classifier checkpoint."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test_tools'))

from tool_utils import CONFIG, REPO_ROOT, TINY_MODEL  # noqa: E402,F401

# The sizes of the acceptance test: square, non-square, and no multiple of 32.
SIZES = [(128, 128), (160, 224), (200, 300)]
TINY_PYRAMID = dict(embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1])
TINY_ISOTROPIC = dict(embed_dim=32, depth=2)


def save_classifier(name: str, options: dict, folder) -> str:
    """A freshly initialised timm GFNet saved as ``{'model': state_dict}`` (official layout)."""
    import timm

    from gfnet_seg.fileio import atomic_torch_save

    path = str(folder / f'{name}.pth')
    atomic_torch_save({'model': timm.create_model(name, **options).state_dict()}, path)
    return path
