"""``make demo`` (gfnet_seg.demo.run_demo) end to end, shrunk to a tiny model and a few iterations."""
import os.path as osp

import cv2
import torch

from gfnet_seg.demo import DEMO_CONFIG, run_demo

from tool_utils import REPO_ROOT, TINY_MODEL

# In this process: no data loader workers, which would outlive the test.
NO_WORKERS = {f'{split}_dataloader.{key}': value for split in ('train', 'test')
              for key, value in (('num_workers', 0), ('persistent_workers', False))}


def test_demo_trains_evaluates_and_draws(tmp_path, capsys):
    iters = 6
    options = {**TINY_MODEL, **NO_WORKERS, 'train_cfg.max_iters': iters}
    summary = run_demo(osp.join(REPO_ROOT, DEMO_CONFIG), str(tmp_path / 'data'), str(tmp_path / 'work'),
                       options, num_train=4, num_val=2, num_threads=torch.get_num_threads())

    assert summary['checkpoint'] == str(tmp_path / 'work' / f'iter_{iters}.pth')
    assert 0 <= summary['miou'] <= 100 and 0 < summary['chance']['chance'] < 1
    image, overlay = cv2.imread(summary['image']), cv2.imread(summary['overlay'])
    assert overlay is not None and overlay.shape == image.shape
    printed = capsys.readouterr().out
    assert f"val mIoU    {summary['miou']:.2f}%" in printed
    assert f"chance      {100 * summary['chance']['chance']:.2f}%" in printed
    assert summary['overlay'] in printed
