"""The TorchScript-based ONNX exporter (``torch.onnx.export(dynamo=False)``, timm's ``onnx_export.py``):
the global filter becomes ONNX DFT nodes (gfnet_seg/models/dft.py ``OnnxDFTFilter``), the filter and
position-embedding resizes stay in the graph, so one file runs at any height and width.

The models' filters are re-drawn at a unit scale and their layer scales set to 1 (initialised at
0.02 and 1e-3, a wrong transform would hardly move the logits); onnxruntime is compared with
PyTorch eager.
"""
import io
import os

import numpy as np
import onnx
import pytest
import torch

from gfnet_seg.deployment import export_onnx, format_table, load_deployed, verify_onnx
from gfnet_seg.deployment.verify import ort_session
from gfnet_seg.models import GlobalFilter
from gfnet_seg.models.gfnet import Block

from deploy_utils import CONFIG, REPO_ROOT, TINY_ISOTROPIC, TINY_MODEL, TINY_PYRAMID, save_classifier

# The traced size and another one, not square and no multiple of 32.
DYNAMIC_SIZES = [(64, 64), (96, 128)]


def _op_types(model_bytes: bytes) -> set:
    return {node.op_type for node in onnx.load_from_string(model_bytes).graph.node}


def _strong_filters(module: torch.nn.Module) -> torch.nn.Module:
    """Filters at a unit scale and layer scales at 1, so that every filter shows in the output."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, GlobalFilter):
                layer.complex_weight.copy_(torch.randn(layer.complex_weight.shape, generator=generator) * 0.5)
            elif isinstance(layer, Block) and layer.gamma is not None:
                layer.gamma.fill_(1.0)
    return module


def _assert_within_tolerance(rows, sizes):
    assert [row.size for row in rows] == sizes
    assert all(row.ok for row in rows), format_table(rows)


class _Filter(torch.nn.Module):
    """One global filter on tokens (B, H, W, C), its filter built for a 7x7 grid."""

    def __init__(self):
        super().__init__()
        self.filter = _strong_filters(GlobalFilter(dim=3, h=7, w=4))

    def forward(self, x):
        return self.filter(x)


@pytest.mark.parametrize('opset', [17, 20])
def test_global_filter_as_dft_nodes(opset):
    """The filter alone against torch.fft eager, batch, H and W free: the traced grid, odd and even
    widths, a filter resized up and down; DFT-17 (axis attribute) and DFT-20 (axis input). Only this
    exporter takes the path: a plain ``torch.jit.trace`` still records torch.fft."""
    module = _Filter().eval()
    graph = str(torch.jit.trace(module, torch.randn(1, 7, 7, 3)).inlined_graph)
    assert 'aten::fft_rfft2' in graph and 'PythonOp' not in graph
    buffer = io.BytesIO()
    torch.onnx.export(module, (torch.randn(1, 7, 7, 3),), buffer, dynamo=False, opset_version=opset,
                      input_names=['x'], dynamic_axes={'x': {0: 'batch', 1: 'height', 2: 'width'}})
    model = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(model), full_check=True)
    assert 'DFT' in _op_types(model)
    session = ort_session(model)
    for shape in [(1, 7, 7, 3), (2, 6, 9, 3), (1, 10, 8, 3)]:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(shape[1]))
        with torch.no_grad():
            expected = module(x).numpy()
        assert np.abs(expected).max() > 0.1
        np.testing.assert_allclose(session.run(None, {'x': x.numpy()})[0], expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize('name, options', [('gfnet_ti', TINY_ISOTROPIC), ('gfnet_h_ti', TINY_PYRAMID)],
                         ids=['isotropic', 'pyramid'])
def test_classifier_dynamic(tmp_path, name, options):
    """Free H and W: the position embedding and the filters are resized in the graph."""
    classifier = _strong_filters(load_deployed(name, save_classifier(name, options, tmp_path), dict(options)))
    model = export_onnx(classifier, DYNAMIC_SIZES[0], dynamic=True, dynamo=False)
    assert 'DFT' in _op_types(model)
    session = ort_session(model)
    assert session.get_inputs()[0].shape == [1, 3, 'height', 'width']
    _assert_within_tolerance(verify_onnx(model, classifier, DYNAMIC_SIZES, session=session), DYNAMIC_SIZES)


@pytest.fixture(scope='module')
def strong_segmentor(seg_checkpoint):
    """The tiny segmentor with unit-scale filters (a copy: the session's ``segmentor`` is shared)."""
    return _strong_filters(load_deployed(os.path.join(REPO_ROOT, CONFIG), seg_checkpoint, dict(TINY_MODEL)))


@pytest.mark.parametrize('fft', ['native', 'matmul'])
def test_segmentor_dynamic(strong_segmentor, fft):
    """Logits of the input's size at any size, with DFT nodes or with the DFT matrices built from
    the traced shape (``--fft matmul``)."""
    model = export_onnx(strong_segmentor, DYNAMIC_SIZES[0], fft=fft, dynamic=True, dynamo=False)
    assert ('DFT' in _op_types(model)) == (fft == 'native')
    session = ort_session(model)
    assert session.get_outputs()[0].shape[2:] == ['height', 'width']
    _assert_within_tolerance(verify_onnx(model, strong_segmentor, DYNAMIC_SIZES, session=session), DYNAMIC_SIZES)


def test_segmentor_fixed_size(strong_segmentor):
    """A fixed-size file at opset 17 (DFT-17: the TorchScript exporter's minimum, where the dynamo
    exporter needs 20)."""
    model = export_onnx(strong_segmentor, (96, 128), opset=17, dynamo=False)
    assert onnx.load_from_string(model).opset_import[0].version == 17
    session = ort_session(model)
    assert session.get_inputs()[0].shape == [1, 3, 96, 128]
    _assert_within_tolerance(verify_onnx(model, strong_segmentor, [(96, 128)], session=session), [(96, 128)])


def test_timm_onnx_export(tmp_path):
    """What timm's ``onnx_export.py`` runs (``timm.utils.onnx.onnx_export``): the TorchScript exporter at
    its default opset, dynamic batch, H and W, ``onnx.checker`` full check and its own forward check."""
    import timm
    from timm.utils.onnx import onnx_export

    model = _strong_filters(timm.create_model('gfnet_h_ti', **TINY_PYRAMID)).eval()
    path = str(tmp_path / 'gfnet_h_ti.onnx')
    onnx_export(model, path, input_size=(3, 64, 64), batch_size=1, dynamic_size=True, check_forward=True)
    session = ort_session(path)
    x = torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(session.run(None, {'input0': x.numpy()})[0], expected, atol=1e-4, rtol=0)

