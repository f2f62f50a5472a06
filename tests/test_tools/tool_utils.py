"""What the tool tests share: the synthetic config shrunk to tiny widths, the tools run as a user
runs them, and reading back what they wrote."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np

import launch_utils

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = 'configs/sem_fpn/fpn_gfnet-h-ti_1xb2-300_synthetic-128x128.py'
# GFNet-H-Ti's shape at tiny widths, set from the command line: a training iteration takes
# tens of milliseconds on one core.
TINY_MODEL = {
    'model.backbone.arch._delete_': True,  # replaces the string 'h-ti' by the dict below
    'model.backbone.arch.embed_dims': [16, 32, 48, 64],
    'model.backbone.arch.depths': [1, 1, 1, 1],
    'model.backbone.arch.layer_scale_init': 1e-3,
    'model.neck.in_channels': [16, 32, 48, 64],
    'model.neck.out_channels': 32,
    'model.decode_head.in_channels': [32, 32, 32, 32],
    'model.decode_head.channels': 32,
}


def data_options(data_root) -> dict:
    return {f'{split}_dataloader.dataset.data_root': str(data_root) for split in ('train', 'val', 'test')}


def as_flags(options: dict) -> list:
    """``--cfg-options`` arguments for ``options``."""
    return ['--cfg-options', *(f'{key}={value}' for key, value in options.items())]


def _checked(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (f'{" ".join(map(str, result.args))}\nexit code {result.returncode}\n'
                                    f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result


def run_tool(tool: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python tools/<tool> ARGS`` from the repository root, on one intra-op thread (the test
    machine's cores are shared); fails the test with the tool's output if it fails."""
    return _checked(subprocess.run(
        [sys.executable, os.path.join('tools', tool), *map(str, args)], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS='1')))


def shipped_tools(package) -> str:
    """The tools an OpenMMLab package ships inside itself (``<package>/.mim/tools``, what ``mim`` runs)."""
    return osp.join(osp.dirname(package.__file__), '.mim', 'tools')


def run_shipped_tool(package, tool: str, *args, cwd=REPO_ROOT, check: bool = True, layer: bool = True,
                     timeout: int = 300) -> subprocess.CompletedProcess:
    """``python <package>/.mim/tools/<tool> ARGS`` in this environment, as a user runs it, on one
    intra-op thread; fails the test with the tool's output if it fails (``check``). ``layer=False``
    runs it with the mmcv-lite layer turned off."""
    from gfnet_seg.compat import OPT_OUT
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg')
    env.pop(OPT_OUT, None)
    if not layer:
        env[OPT_OUT] = '0'
    result = subprocess.run([sys.executable, osp.join(shipped_tools(package), tool), *map(str, args)], cwd=cwd,
                            capture_output=True, text=True, timeout=timeout, env=env)
    return _checked(result) if check else result


def run_distributed(script: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``bash tools/<script> ARGS`` (torchrun; gloo on CPU); fails the test if it fails."""
    return _checked(launch_utils.run_distributed(script, *args, timeout=timeout))


def dumped_metrics(work_dir) -> dict:
    """The metrics ``tools/test.py --work-dir`` dumped (``<work_dir>/<timestamp>/<timestamp>.json``)."""
    paths = glob.glob(os.path.join(str(work_dir), '*', '*.json'))
    assert len(paths) == 1, paths
    with open(paths[0]) as file:
        return json.load(file)


def annotation_dir(root):
    return osp.join(str(root), 'annotations', 'validation')


def miou_of_maps(pred_dir, gt_dir, num_classes):
    """mIoU (%) from label files, ADE convention on both sides (0 = unlabelled, c + 1 = class c):
    intersections and unions summed over the data set, classes with an empty union left out."""
    intersection, union = np.zeros(num_classes), np.zeros(num_classes)
    gt_paths = sorted(glob.glob(osp.join(gt_dir, '*.png')))
    for gt_path in gt_paths:
        gt = cv2.imread(gt_path, cv2.IMREAD_UNCHANGED).astype(np.int64) - 1
        pred = cv2.imread(osp.join(pred_dir, osp.basename(gt_path)), cv2.IMREAD_UNCHANGED)
        assert pred is not None and pred.shape == gt.shape, gt_path  # predicted at full resolution
        pred = pred.astype(np.int64)[gt >= 0] - 1
        gt = gt[gt >= 0]
        for c in range(num_classes):
            intersection[c] += np.sum((pred == c) & (gt == c))
            union[c] += np.sum((pred == c) | (gt == c))
    present = union > 0
    return 100 * np.mean(intersection[present] / union[present])
