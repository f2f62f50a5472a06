"""Mistakes stop a segmentation run early, in one line that names the file and the problem, and
a diverging run stops with its last checkpoint intact."""
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gfnet_seg import apis
from gfnet_seg.engine import DataCheckError
from gfnet_seg.models import create_gfnet
from gfnet_seg.models.backbones import GFNetH
from seg_utils import failure, run_tool, write_tiny_config

# Poisons the head before the 5th iteration: its loss is NaN, as after a diverging update.
NAN_HOOK = """
class Injected(Hook):
    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == 5:
            model = getattr(runner.model, 'module', runner.model)
            model.decode_head.conv_seg.weight.data.fill_(float('nan'))
"""


def one_line_error(result) -> str:
    """The tool's message for a known mistake: exit code 1 and a last line, no traceback."""
    assert result.returncode == 1 and 'Traceback' not in result.stderr, failure(result)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith('error: '), failure(result)
    return line


def test_nan_loss_stops_training_and_keeps_last_checkpoint(tmp_path, synthetic_root):
    config = write_tiny_config(tmp_path, synthetic_root, """
        train_cfg = dict(max_iters=6, val_interval=100)
        default_hooks = dict(checkpoint=dict(interval=2))
    """)
    work_dir = tmp_path / 'work'
    result = run_tool(['train.py', config, '--work-dir', work_dir], hook=NAN_HOOK)
    message = one_line_error(result)
    assert 'data check: 8 train samples' in result.stdout + result.stderr  # SegDataCheckHook ran
    assert f'loss is nan at iteration 5; training stopped (last checkpoint kept: {work_dir / "iter_4.pth"})' in message
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_2.pth', 'iter_4.pth']
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir / 'iter_4.pth')
    checkpoint = torch.load(work_dir / 'iter_4.pth', weights_only=True)
    assert all(torch.isfinite(v).all() for v in checkpoint['state_dict'].values())


def test_missing_data_root_stops_the_tool_before_anything_is_built(tmp_path):
    config = write_tiny_config(tmp_path, tmp_path / 'nowhere')
    work_dir = tmp_path / 'work'
    result = run_tool(['train.py', config, '--work-dir', work_dir])
    assert one_line_error(result).startswith(
        f'error: train_dataloader: image folder {tmp_path / "nowhere/images/training"} does not exist')
    assert not work_dir.exists()  # the runner, which makes it, was never built


def test_evaluation_checks_its_own_data_only(tmp_path):
    """tools/test.py needs no training data: the test loader is the one checked."""
    config = write_tiny_config(tmp_path, tmp_path / 'nowhere')
    with pytest.raises(DataCheckError, match=r'test_dataloader: image folder .*nowhere/images/validation'):
        apis.test(apis.load_config(config, work_dir=str(tmp_path / 'work')))


def test_unknown_arch_in_a_config_lists_the_valid_ones():
    from mmseg.registry import MODELS
    with pytest.raises(ValueError, match=r"unknown GFNet arch 'h-xl'.*h-ti.*h-s.*h-b"):
        MODELS.build(dict(type='GFNetH', arch='h-xl'))


def test_gfnet_h_s_weights_into_gfnet_h_ti_name_the_first_keys(tmp_path):
    path = tmp_path / 'gfnet-h-s.pth'
    torch.save({'model': create_gfnet('h-s').state_dict()}, path)
    backbone = GFNetH('h-ti', img_size=64, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r'patch_embed\.0\.proj\.weight: checkpoint \(96, 3, 4, 4\) vs '
                                         r'model \(64, 3, 4, 4\)'):
        backbone.init_weights()


class _RunsCode:
    """A pickle that would create a file when unpickled without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), 'w')


def test_backbone_checkpoint_that_runs_code_is_refused(tmp_path):
    path, marker = tmp_path / 'malicious.pth', tmp_path / 'was_run'
    torch.save({'model': {'pos_embed': _RunsCode(marker)}}, path)
    backbone = GFNetH('h-ti', img_size=64, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(RuntimeError, match=r'malicious.pth holds Python objects.*tools/convert_checkpoint.py'):
        backbone.init_weights()
    assert not marker.exists()


def test_evaluation_checks_its_test_set_file_by_file_first(tmp_path, synthetic_root):
    """tools/test.py (and dist_test.sh, which runs it) reads its test set before evaluating: an RGB
    colour map (or an annotation of another size, tests/test_data_check.py) is named in one line,
    where mmseg would stop with an IndexError in the middle of the evaluation."""
    data_root = tmp_path / 'data'
    shutil.copytree(synthetic_root, data_root)
    annotation = sorted((data_root / 'annotations' / 'validation').glob('*.png'))[1]
    label = np.asarray(Image.open(annotation))
    Image.fromarray(np.repeat(label[..., None], 3, axis=2)).save(annotation)
    message = f'test set: annotation {annotation} has 3 channels: labels must be single-channel class indices'
    options = {f'test_dataloader.{key}': value for key, value in (('num_workers', 0), ('persistent_workers', False))}
    cfg = apis.load_config(write_tiny_config(tmp_path, data_root), options, str(tmp_path / 'work'))
    with pytest.raises(DataCheckError) as error:
        apis.test(cfg)
    assert str(error.value).startswith(message)
