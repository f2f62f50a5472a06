"""Mask R-CNN on GFNet-H-Ti trained with ``--amp`` as ``tools/train.py`` sets it up (``setup_train``):
on CUDA mmengine's AmpOptimWrapper (float16 with a dynamic loss scale) at the COCO size, run by
``make gpu-check``; the same steps on the CPU (``CPUAmpOptimWrapper``, bfloat16) at a smaller size in
every run, so that the test itself is known to work where no GPU is lent."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from gfnet_seg.analysis import benchmark as bench
from gfnet_seg.analysis.config_table import build_detector
from gfnet_seg.apis import setup_train

CONFIG = os.path.join('configs', 'mask_rcnn', 'mask-rcnn_gfnet-h-ti_fpn_1x_coco.py')
CUDA = [pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA device (none here; run `make gpu-check` where there is one)')]


@pytest.mark.parametrize('device, size, wrapper, rois', [
    # fewer sampled RoIs on the CPU, whose RoIAlign backward (torchvision's) takes most of a step
    pytest.param('cpu', (128, 192), 'CPUAmpOptimWrapper', 64, id='cpu-bf16'),
    pytest.param('cuda', (800, 1333), 'AmpOptimWrapper', None, id='cuda-fp16', marks=CUDA)])
def test_mask_rcnn_amp_training_steps(device, size, wrapper, rois, repo_root, fft_inputs):
    """Two optimiser steps on two made-up COCO-like images: every loss finite (the mask loss
    among them), the filters moved, every FFT in single precision under autocast."""
    cfg = Config.fromfile(os.path.join(repo_root, CONFIG))
    cfg.model.backbone.init_cfg = None  # no ImageNet checkpoint here
    if rois:
        cfg.model.train_cfg.rpn_proposal.max_per_img = 4 * rois
        cfg.model.train_cfg.rcnn.sampler.num = rois
    cfg.work_dir = None
    cfg = setup_train(cfg, amp=True)
    assert cfg.optim_wrapper.type == wrapper
    torch.manual_seed(0)
    detector = build_detector(cfg).to(device)
    optim_wrapper = build_optim_wrapper(detector, cfg.optim_wrapper)
    first = next(m for m in detector.backbone.modules() if type(m).__name__ == 'GlobalFilter')
    before = first.complex_weight.detach().clone()
    data = bench.detection_batch(2, *size)
    for _ in range(2):
        log = detector.train_step(data, optim_wrapper)
        assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(log)
        assert all(torch.isfinite(torch.as_tensor(value)).all() for value in log.values()), log
    assert not torch.equal(first.complex_weight.detach(), before)
    assert fft_inputs and set(fft_inputs) <= {torch.float32, torch.complex64}
    if device == 'cuda':
        assert 0 < optim_wrapper.loss_scaler.get_scale() < float('inf')
