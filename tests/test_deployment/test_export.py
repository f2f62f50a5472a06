"""Segmentors and classifiers exported to ONNX and run in onnxruntime against PyTorch eager.

Each export is traced once per module (they take seconds) and run at the acceptance sizes.
"""
import numpy as np
import onnx
import pytest
import torch

from gfnet_seg.deployment import export_onnx, format_table, load_deployed, verify_onnx
from gfnet_seg.deployment.verify import MAX_ABS_DIFF, MIN_ARGMAX_AGREEMENT, ort_session

from deploy_utils import SIZES, TINY_ISOTROPIC, TINY_PYRAMID, save_classifier


def _op_types(model_bytes: bytes) -> set:
    model = onnx.load_from_string(model_bytes)
    types = {node.op_type for node in model.graph.node}
    for function in model.functions:
        types |= {node.op_type for node in function.node}
    return types


def _assert_within_tolerance(rows):
    assert rows and all(row.ok for row in rows), format_table(rows)


def test_dynamic_segmentor_runs_at_any_size(dynamic_export, segmentor):
    fft, model = dynamic_export
    rows = verify_onnx(model, segmentor, SIZES)
    assert [row.size for row in rows] == SIZES
    _assert_within_tolerance(rows)
    has_dft = 'DFT' in _op_types(model)
    assert has_dft == (fft == 'native')  # the matmul file runs where there is no DFT operator


def test_fixed_segmentor(segmentor):
    """A fixed-size file per filter; it declares its size, and takes uint8 RGB with the
    normaliser in the graph (``--with-preprocess``) just as PyTorch's preprocessor computes it."""
    segmentor.with_preprocess = True
    try:
        for fft in ('native', 'matmul'):
            model = export_onnx(segmentor, (160, 224), fft=fft)
            session = ort_session(model)
            assert session.get_inputs()[0].shape == [1, 3, 160, 224]
            assert session.get_inputs()[0].type == 'tensor(uint8)'
            _assert_within_tolerance(verify_onnx(model, segmentor, [(160, 224)], session=session))
    finally:
        segmentor.with_preprocess = False


def test_preprocess_matches_mmseg(segmentor):
    """The in-graph normaliser is mmseg's data preprocessor (BGR image -> RGB, mean, std)."""
    rgb = torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8)
    packed = segmentor.segmentor.data_preprocessor({'inputs': [rgb.flip(0)]}, training=False)['inputs']
    torch.testing.assert_close(segmentor.normalize(rgb[None]), packed)


@pytest.mark.parametrize('name, options, fft', [
    ('gfnet_ti', TINY_ISOTROPIC, 'matmul'),
    ('gfnet_h_ti', TINY_PYRAMID, 'native'),
], ids=['isotropic-matmul', 'pyramid-native'])
def test_classifier(tmp_path, name, options, fft):
    """Fixed-size classifier files (the dynamic export is the segmentor's, same backbone code),
    at a non-square size that is no multiple of 32."""
    classifier = load_deployed(name, save_classifier(name, options, tmp_path), dict(options))
    model = export_onnx(classifier, (96, 144), fft=fft)
    _assert_within_tolerance(verify_onnx(model, classifier, [(96, 144)]))
    logits = ort_session(model).run(None, {'input': np.zeros((1, 3, 96, 144), np.float32)})[0]
    assert logits.shape == (1, 1000)


def test_tolerances_are_the_issue_bar():
    assert (MAX_ABS_DIFF, MIN_ARGMAX_AGREEMENT) == (1e-4, 0.9999)
