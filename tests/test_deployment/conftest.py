"""Tiny GFNet models saved as checkpoints, shared by the deployment tests (onnx, onnxruntime and
onnxscript come with the ``deploy`` extra)."""
import os

import pytest

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

from deploy_utils import CONFIG, REPO_ROOT, TINY_MODEL  # noqa: E402


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
