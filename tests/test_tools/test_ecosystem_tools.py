"""mmseg's own tools, shipped inside the installed mmseg package (``mmseg/.mim/tools/``, what
``mim train mmseg`` runs), on our configs: nothing of ours runs before they import mmseg, so this
checks that the install made the whole environment work (the mmcv-lite layer's .pth hook), not
only our tools."""
import os
import os.path as osp

import mmseg
import pytest

from tool_utils import CONFIG, REPO_ROOT, TINY_MODEL, as_flags, data_options, run_shipped_tool, shipped_tools

MMSEG_TOOLS = shipped_tools(mmseg)
ITERS = 2
SHORT_RUN = {'train_cfg.max_iters': ITERS, 'train_cfg.val_interval': ITERS,
             'default_hooks.checkpoint.interval': ITERS, 'param_scheduler.0.end': ITERS,
             **{f'{split}_dataloader.{key}': value for split in ('train', 'val', 'test')
                for key, value in (('num_workers', 0), ('persistent_workers', False))}}

pytestmark = pytest.mark.skipif(not osp.isdir(MMSEG_TOOLS), reason=f'mmseg ships no tools here: {MMSEG_TOOLS}')


def run_mmseg_tool(tool, *args, cwd=REPO_ROOT):
    return run_shipped_tool(mmseg, tool, *args, cwd=cwd)


@pytest.fixture(scope='module')
def mmseg_trained(tmp_path_factory, synthetic_root):
    work_dir = tmp_path_factory.mktemp('mmseg_train')
    options = {**TINY_MODEL, **data_options(synthetic_root), **SHORT_RUN}
    run_mmseg_tool('train.py', CONFIG, '--work-dir', work_dir, *as_flags(options))
    checkpoint = work_dir / f'iter_{ITERS}.pth'
    assert checkpoint.is_file(), sorted(os.listdir(work_dir))
    return checkpoint, options


def test_mmseg_train_and_test(mmseg_trained, tmp_path):
    checkpoint, options = mmseg_trained
    result = run_mmseg_tool('test.py', CONFIG, checkpoint, '--work-dir', tmp_path, *as_flags(options))
    assert 'mIoU' in result.stdout + result.stderr


def test_mmseg_get_flops(synthetic_root):
    result = run_mmseg_tool('analysis_tools/get_flops.py', CONFIG, '--shape', 128, 128,
                            *as_flags({**TINY_MODEL, **data_options(synthetic_root)}))
    assert 'Flops' in result.stdout and 'Params' in result.stdout, result.stdout[-2000:]


def test_mmseg_print_config(tmp_path):
    # the tool also dumps the config to ./example.py: run it in a scratch folder
    result = run_mmseg_tool('misc/print_config.py', osp.join(REPO_ROOT, CONFIG), cwd=tmp_path)
    assert "type='GFNetH'" in result.stdout, result.stdout[-2000:]
    assert "type='GFNetH'" in (tmp_path / 'example.py').read_text()


def test_mmseg_browse_dataset(synthetic_root, tmp_path):
    out = tmp_path / 'browse'
    run_mmseg_tool('analysis_tools/browse_dataset.py', CONFIG, '--output-dir', out, '--not-show',
                   *as_flags({**data_options(synthetic_root), 'train_dataloader.num_workers': 0,
                             'train_dataloader.persistent_workers': False}))
    drawn = [name for _, _, names in os.walk(out) for name in names]
    assert len(drawn) >= 32, drawn[:5]  # one picture per training image
