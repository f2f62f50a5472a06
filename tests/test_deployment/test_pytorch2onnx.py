"""tools/deployment/pytorch2onnx.py: bad input gives one line and exit code 1, and no .onnx file
(partial or unverified) is ever left; a verified file is written whole."""
import importlib.util
import os
import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper

from gfnet_seg.deployment import tool

from deploy_utils import CONFIG, REPO_ROOT, TINY_ISOTROPIC, TINY_MODEL, save_classifier


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'pytorch2onnx', os.path.join(REPO_ROOT, 'tools', 'deployment', 'pytorch2onnx.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytorch2onnx = _load_tool()
OPTIONS = ['--cfg-options', *(f'{key}={value}' for key, value in TINY_MODEL.items())]


def _fails_with(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        pytorch2onnx.main(argv)
    assert exit_info.value.code == 1
    captured = capsys.readouterr().err
    err = captured.strip().split('\n')[-1].split('\r')[-1].strip()  # after any progress bar
    assert err.startswith('error: ') and message in err and 'Traceback' not in captured, captured
    return err


def test_bad_input(tmp_path, capsys, seg_checkpoint):
    out = str(tmp_path / 'model.onnx')
    config = os.path.join(REPO_ROOT, CONFIG)
    _fails_with(capsys, ['configs/nope.py', seg_checkpoint, '--out', out], 'config file not found: configs/nope.py')
    _fails_with(capsys, [config, str(tmp_path / 'missing.pth'), '--out', out, *OPTIONS],
                'checkpoint file not found')
    _fails_with(capsys, [config, seg_checkpoint, '--out', out, '--opset', '17', *OPTIONS],
                '--opset 17 is too old for --fft native')
    _fails_with(capsys, [config, seg_checkpoint, '--out', out, '--shape', '16', '64', *OPTIONS],
                "smaller than the network's stride 32")
    resnet = tmp_path / 'fpn_r50.py'
    resnet.write_text("_base_ = ['mmseg::_base_/models/fpn_r50.py']\n")
    _fails_with(capsys, [str(resnet), seg_checkpoint, '--out', out], 'not a GFNet segmentor')
    classifier_args = ['gfnet_h_ti', seg_checkpoint, '--out', out, '--cfg-options', 'depths=[1,1,1,1]']
    _fails_with(capsys, classifier_args, 'does not fit')  # a segmentor's file for a classifier
    assert os.listdir(tmp_path) == ['fpn_r50.py']


def test_bad_input_from_the_command_line(tmp_path):
    """As a user runs it: one line on stderr, exit code 1, no traceback, no file."""
    result = subprocess.run(
        [sys.executable, 'tools/deployment/pytorch2onnx.py', CONFIG, str(tmp_path / 'missing.pth'),
         '--out', str(tmp_path / 'model.onnx')], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith('error: checkpoint file not found')
    assert 'Traceback' not in result.stderr and not os.listdir(tmp_path)


def _constant_model() -> bytes:
    """An ONNX model that is not the segmentor: the channel mean of its input."""
    graph = helper.make_graph(
        [helper.make_node('ReduceMean', ['input'], ['logits'], axes=[1])], 'wrong',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 'h', 'w'])],
        [helper.make_tensor_value_info('logits', TensorProto.FLOAT, [1, 1, 'h', 'w'])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)]).SerializeToString()


def test_failed_verification_writes_nothing(tmp_path, capsys, monkeypatch, seg_checkpoint):
    monkeypatch.setattr(tool, 'export_onnx', lambda *args, **kwargs: _constant_model())
    out = tmp_path / 'model.onnx'
    err = _fails_with(capsys, [os.path.join(REPO_ROOT, CONFIG), seg_checkpoint, '--out', str(out),
                               '--verify', *OPTIONS], 'onnxruntime differs from PyTorch')
    assert 'not written' in err and not os.listdir(tmp_path)


def test_verified_file_is_written(tmp_path, capsys, monkeypatch, seg_checkpoint, dynamic_export):
    """The tool's flow around the export (tested in test_export.py): verify at the three default
    sizes of a dynamic file, print the table, then write the file."""
    fft, model = dynamic_export
    calls = []

    def export(module, shape, fft, dynamic, opset, dynamo):
        calls.append((tuple(shape), fft, dynamic, opset, dynamo))
        return model

    monkeypatch.setattr(tool, 'export_onnx', export)
    out = tmp_path / 'model.onnx'
    pytorch2onnx.main([os.path.join(REPO_ROOT, CONFIG), seg_checkpoint, '--out', str(out), '--dynamic',
                       '--fft', fft, '--verify', *OPTIONS])
    assert calls == [((128, 128), fft, True, 20, True)]  # the config's crop, the dynamo exporter by default
    table = capsys.readouterr().out
    for size in ('128x128', '160x224', '200x300'):
        assert f'| random | {size} |' in table and '| NO |' not in table
    onnx.checker.check_model(onnx.load(str(out)))
    assert os.listdir(tmp_path) == ['model.onnx']


def test_torchscript_exporter_from_the_tool(tmp_path, capsys):
    """``--no-dynamo``: the TorchScript-based exporter, here at opset 17 (too old for the dynamo
    exporter's DFT nodes), a dynamic classifier verified at two sizes before it is written."""
    options = dict(TINY_ISOTROPIC)
    checkpoint = save_classifier('gfnet_ti', options, tmp_path)
    out = tmp_path / 'cls.onnx'
    pytorch2onnx.main(['gfnet_ti', checkpoint, '--out', str(out), '--shape', '64', '64', '--dynamic', '--no-dynamo',
                       '--opset', '17', '--verify', '--verify-sizes', '64', '64', '96', '128',
                       '--cfg-options', *(f'{key}={value}' for key, value in options.items())])
    printed = capsys.readouterr().out
    assert 'TorchScript exporter' in printed and '| random | 96x128 |' in printed and '| NO |' not in printed
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 17 and 'DFT' in {node.op_type for node in model.graph.node}
