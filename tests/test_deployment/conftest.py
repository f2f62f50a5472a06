"""Tiny GFNet models saved as checkpoints, shared by the deployment tests (onnx, onnxruntime and
onnxscript come with the ``deploy`` extra)."""
import os
import sys

import pytest

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'test_tools'))

from tool_utils import CONFIG, REPO_ROOT, TINY_MODEL  # noqa: E402

# The sizes of the acceptance test: square, non-square, and no multiple of 32.
SIZES = [(128, 128), (160, 224), (200, 300)]
TINY_PYRAMID = dict(embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1])
TINY_ISOTROPIC = dict(embed_dim=32, depth=2)


@pytest.fixture(scope='session')
def seg_checkpoint(tmp_path_factory):
    """A freshly initialised tiny GFNet-H-Ti Semantic FPN, saved as mmengine saves it."""
    from mmseg.apis import init_model

    from gfnet_seg.apis import load_config
    from gfnet_seg.fileio import atomic_torch_save

    model = init_model(load_config(os.path.join(REPO_ROOT, CONFIG), dict(TINY_MODEL)), None, device='cpu')
    path = str(tmp_path_factory.mktemp('seg') / 'tiny_fpn.pth')
    atomic_torch_save({'meta': {}, 'state_dict': model.state_dict()}, path)
    return path


@pytest.fixture(scope='session')
def segmentor(seg_checkpoint):
    """The tiny segmentor as ``pytorch2onnx.py`` loads it."""
    from gfnet_seg.deployment import load_deployed

    return load_deployed(os.path.join(REPO_ROOT, CONFIG), seg_checkpoint, dict(TINY_MODEL))


@pytest.fixture(scope='session', params=['native', 'matmul'])
def dynamic_export(request, segmentor):
    """``(fft, model bytes)``: the segmentor exported with free H and W, once per filter."""
    from gfnet_seg.deployment import export_onnx

    return request.param, export_onnx(segmentor, (128, 128), fft=request.param, dynamic=True)


def save_classifier(name: str, options: dict, folder) -> str:
    """A freshly initialised timm GFNet saved as ``{'model': state_dict}`` (official layout)."""
    import timm

    from gfnet_seg.fileio import atomic_torch_save

    path = str(folder / f'{name}.pth')
    atomic_torch_save({'model': timm.create_model(name, **options).state_dict()}, path)
    return path
