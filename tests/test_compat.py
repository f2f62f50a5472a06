"""The mmcv-lite compatibility layer: mmseg imports, the pure-PyTorch ops, and staying out of the
way when compiled ops exist; mmengine's checkpoint types and its test-metrics file."""
import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
import torchvision

from gfnet_seg import compat

# With full mmcv (compiled ops) the layer stands aside; what it replaces is then not there to test.
MMCV_LITE_ONLY = pytest.mark.skipif(compat.compiled_mmcv_ops_available(),
                                    reason='full mmcv with compiled ops is installed: the mmcv-lite layer is not used')


def run_python(code, cwd=None):
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def without_gfnet_seg(code):
    """Run ``code`` in a fresh interpreter of this environment and check it never imported gfnet_seg's
    package (only the .pth's ``gfnet_seg.compat``); print 'ok' at the end."""
    return run_python(code + "\nassert 'gfnet_seg' not in sys.modules, 'the program imported gfnet_seg'\nprint('ok')")


@MMCV_LITE_ONLY
def test_mmseg_and_mmdet_import_in_any_program_of_the_environment():
    """The .pth hook: no ``import gfnet_seg``, yet mmseg's and mmdet's model packages import."""
    result = without_gfnet_seg("""
import sys
import mmseg.models
from mmseg.models.decode_heads import PSAHead, CCHead
import mmdet.models
import mmcv.ops, mmcv.ops.nms, mmcv.ops.roi_align, mmcv.ops.carafe, mmcv.ops.merge_cells
from mmcv.ops.modulated_deform_conv import ModulatedDeformConv2d
assert mmcv.ops.__file__.endswith('gfnet_seg/mmcv_ops.py'), mmcv.ops.__file__
assert sys.modules['mmcv.ops.nms'].batched_nms is mmcv.ops.batched_nms
assert mmcv.ops.nms.__name__ == 'nms' and mmcv.ops.roi_align.__name__ == 'roi_align'  # functions, as in mmcv
# mmcv-lite's own uncompiled modules are loaded from mmcv-lite
assert mmcv.ops.merge_cells.__file__.startswith(mmcv.__path__[0]), mmcv.ops.merge_cells.__file__
import mmcv.ops.point_sample
assert mmcv.ops.point_sample.__module__ == 'mmcv.ops.point_sample'
""")
    assert result.returncode == 0 and result.stdout.strip().endswith('ok'), result.stderr[-3000:]


def test_the_hook_costs_nothing_without_mmcv():
    """A program that never imports mmcv: no torch, no mmcv, nothing but the hook's own module."""
    result = run_python("""
        import sys
        assert 'gfnet_seg.compat' in sys.modules, 'the .pth hook is not installed'
        heavy = [m for m in ('torch', 'mmcv', 'mmengine', 'numpy', 'gfnet_seg', 'importlib.metadata')
                 if m in sys.modules]
        assert not heavy, heavy
        print('ok')
    """)
    assert result.returncode == 0 and result.stdout.strip() == 'ok', result.stderr


@MMCV_LITE_ONLY
def test_without_layer_mmseg_import_fails():
    """The layer is needed: plain mmcv-lite cannot import mmseg.models (else it is dead code); the
    opt-out variable shows mmcv-lite as it is."""
    result = subprocess.run([sys.executable, '-c', 'import mmseg.models'], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, GFNET_SEG_MMCV_LITE='0'))
    assert result.returncode != 0 and 'mmcv._ext' in result.stderr


@MMCV_LITE_ONLY
def test_import_gfnet_seg_needs_no_hook():
    """From a source checkout (no .pth, or the hook turned off) ``import gfnet_seg`` installs it."""
    result = subprocess.run([sys.executable, '-c', 'import gfnet_seg, mmseg.models, mmdet.models; print("ok")'],
                            capture_output=True, text=True, timeout=300, env=dict(os.environ, GFNET_SEG_MMCV_LITE='0'))
    assert result.returncode == 0 and result.stdout.strip() == 'ok', result.stderr[-3000:]


def test_layer_does_nothing_when_compiled_ops_exist(tmp_path):
    (tmp_path / '_ext.py').write_text('')  # stands in for mmcv's compiled extension
    result = run_python(f"""
        import sys, mmcv
        mmcv.__path__.append({str(tmp_path)!r})
        from gfnet_seg import compat
        assert compat.compiled_mmcv_ops_available()
        assert compat.MMCVLiteFinder().find_spec('mmcv.ops') is None
        assert compat.MMCVLiteFinder().find_spec('mmcv.ops.nms') is None
        print('untouched')
    """)
    assert result.returncode == 0 and result.stdout.strip() == 'untouched', result.stderr


@MMCV_LITE_ONLY
def test_other_ops_import_and_raise_one_line_when_used():
    import mmcv.ops
    from mmcv.ops import DeformConv2d, PSAMask, deform_conv2d  # noqa: F401  (imports succeed)
    from mmcv.ops.carafe import CARAFEPack
    for use in (lambda: PSAMask('collect', (3, 3)), lambda: CARAFEPack(8, 2), lambda: deform_conv2d(None, None, None),
                lambda: mmcv.ops.nms_match(torch.zeros(0, 5), 0.5)):
        with pytest.raises(ModuleNotFoundError, match=r"^mmcv\.ops\.\w+ needs full mmcv's compiled ops") as error:
            use()
        assert '\n' not in str(error.value)
    assert issubclass(DeformConv2d, torch.nn.Module)
    with pytest.raises(AttributeError):
        mmcv.ops.NoSuchOp
    import mmcv.ops.nms
    with pytest.raises(AttributeError):
        sys.modules['mmcv.ops.nms'].NoSuchOp


@MMCV_LITE_ONLY
def test_point_sample_is_mmcv_lites_own_and_samples_pixel_centres():
    from mmcv.ops import point_sample
    feats = torch.randn(2, 3, 5, 7)
    ys, xs = torch.meshgrid(torch.arange(5), torch.arange(7), indexing='ij')
    points = torch.stack([(xs.flatten() + 0.5) / 7, (ys.flatten() + 0.5) / 5], dim=-1)
    sampled = point_sample(feats, points.expand(2, -1, -1))
    torch.testing.assert_close(sampled, feats.flatten(2))
    grid = points.reshape(1, 5, 7, 2).expand(2, -1, -1, -1)
    torch.testing.assert_close(point_sample(feats, grid), feats)


@MMCV_LITE_ONLY
def test_sigmoid_focal_loss_matches_torchvision():
    from mmcv.ops import SigmoidFocalLoss, sigmoid_focal_loss
    torch.manual_seed(0)
    logits = torch.randn(10, 4) * 3
    target = torch.tensor([0, 1, 2, 3, 4, 0, 1, 4, 2, 3])  # 4 = background
    one_hot = torch.nn.functional.one_hot(target, 5)[:, :4].float()
    expected = torchvision.ops.sigmoid_focal_loss(logits, one_hot, alpha=0.25, gamma=2.0, reduction='none')
    torch.testing.assert_close(sigmoid_focal_loss(logits, target, 2.0, 0.25, None, 'none'), expected)
    torch.testing.assert_close(sigmoid_focal_loss(logits, target), expected.sum() / 10)
    weight = torch.rand(5)
    torch.testing.assert_close(sigmoid_focal_loss(logits, target, weight=weight, reduction='sum'),
                               (expected * weight[target, None]).sum())
    torch.testing.assert_close(SigmoidFocalLoss(2.0, 0.25)(logits, target), expected.sum() / 10)


def test_mmengine_checkpoint_types_load_with_weights_only(tmp_path):
    import numpy as np
    from mmengine.logging import HistoryBuffer

    buffer = HistoryBuffer()
    buffer.update(np.float64(1.5))
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': {'log_scalars': {'train/loss': buffer}},
                'meta': {'seed': np.int64(3), 'arr': np.arange(3.0)}}, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 1.5
    assert np.array_equal(loaded['meta']['arr'], np.arange(3.0))


class _AttributeGrab:
    """Pickles as getattr(HistoryBuffer, '_statistics_methods'): not a statistics method."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return getattr, (HistoryBuffer, '_statistics_methods')


def test_getattr_stand_in_refuses_everything_else(tmp_path):
    path = tmp_path / 'crafted.pth'
    torch.save({'x': _AttributeGrab()}, path)
    with pytest.raises(Exception, match='not allowed'):
        torch.load(path, weights_only=True)


def test_test_metrics_are_written_by_the_main_process_only(tmp_path, monkeypatch):
    """mmengine 0.10.7 writes the test metrics from every process of a distributed test into one file
    (two writers at once left invalid JSON); every process still logs them, the main one alone writes."""
    from mmengine.hooks import LoggerHook

    tags = {'aAcc': 93.4, 'mIoU': 68.32, 'time': 0.0446}
    logged = []
    runner = SimpleNamespace(
        log_dir=str(tmp_path), test_dataloader=[None] * 4, logger=SimpleNamespace(info=logged.append),
        log_processor=SimpleNamespace(get_log_after_epoch=lambda runner, batches, mode, with_non_scalar:
                                      (dict(tags), f'{mode}: {batches} batches')))
    hook = LoggerHook()
    hook.json_log_path = 'metrics.json'
    monkeypatch.setattr('mmengine.dist.is_main_process', lambda: False)
    hook.after_test_epoch(runner)
    assert logged == ['test: 4 batches'] and os.listdir(tmp_path) == []
    monkeypatch.setattr('mmengine.dist.is_main_process', lambda: True)
    hook.after_test_epoch(runner)
    assert logged == ['test: 4 batches'] * 2
    assert os.listdir(tmp_path) == ['metrics.json']  # no temporary file left behind
    assert json.loads((tmp_path / 'metrics.json').read_text()) == tags


def test_mmengine_complexity_info_takes_inputs_and_counts_ffts():
    """mmseg's get_flops.py passes input_shape and inputs; mmengine's counter then counts what ours
    counts, the global filter's FFTs included."""
    from mmengine.analysis import get_model_complexity_info

    from gfnet_seg import create_gfnet
    from gfnet_seg.analysis.flops import count_complexity
    model = create_gfnet('gfnet_h_ti', img_size=64, num_classes=0).eval()
    inputs = torch.zeros(1, 3, 64, 64)
    info = get_model_complexity_info(model, (3, 64, 64), inputs=(inputs,), show_table=False, show_arch=False)
    ours = count_complexity(model, (64, 64))[0]
    assert ours.fft_flops > 0 and info['flops'] == ours.flops


def test_model_index_read_once(monkeypatch):
    """``mmdet::`` bases: mmengine looks each up in the package's model index first (400 YAML files
    for mmdet); the layer reads the index once per process, and the bases resolve as before."""
    import mmdet
    import mmengine.fileio
    from mmengine.config import Config, utils

    assert utils._get_cfg_metainfo is compat._get_cfg_metainfo
    compat._model_indices.clear()
    reads = []
    monkeypatch.setattr(mmengine.fileio, 'load', lambda path, *a, _load=mmengine.fileio.load, **k:
                        reads.append(path) or _load(path, *a, **k))
    configs = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs')
    bases = ['swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', '_base_/default_runtime.py']
    for base in bases * 2:
        path, scope = Config._get_cfg_path(f'mmdet::{base}', 'config.py')
        assert scope == 'mmdet' and path == os.path.join(configs, base) and os.path.isfile(path)
    assert len(reads) > 100 and len(reads) == len(set(reads))  # the index and its metafiles, once each
    name, entry = next(iter(compat._model_index(os.path.dirname(mmdet.__file__)).items()))
    assert compat._get_cfg_metainfo(os.path.dirname(mmdet.__file__), name) == entry
    with pytest.raises(ValueError, match='but got no-such-config'):
        compat._get_cfg_metainfo(os.path.dirname(mmdet.__file__), 'no-such-config')
