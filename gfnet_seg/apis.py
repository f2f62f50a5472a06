"""Train, test and inference behind ``tools/``: mmseg 1.2.2's tools as importable functions.

The tools only parse flags; everything they do is here, so tests call the same code. One
addition to mmseg's tools: multi-process runs on machines without CUDA (``torchrun`` on CPU),
which mmengine does not support (it calls ``torch.cuda.set_device`` and gives DDP a GPU id).
"""
import logging
import os
import os.path as osp
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.apis import inference_model, init_model, show_result_pyplot
from mmseg.registry import RUNNERS
from mmseg.structures import SegDataSample

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config, apply ``--cfg-options``, and set the work dir as mmseg's tools do:
    ``work_dir`` argument > ``work_dir`` in the file > ``work_dirs/<config name>``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def setup_train(cfg: Config, resume: bool = False, amp: bool = False) -> Config:
    """``--resume`` (from the latest checkpoint in the work dir) and ``--amp``, as in mmseg."""
    if amp:
        wrapper = cfg.optim_wrapper.type
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        elif wrapper != 'OptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, the config has {wrapper}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = resume
    return cfg


def setup_test(cfg: Config, checkpoint: str, out: Optional[str] = None, show: bool = False,
               show_dir: Optional[str] = None, wait_time: float = 2, tta: bool = False) -> Config:
    """Evaluate ``checkpoint``; ``out`` keeps the predicted maps, ``show_dir`` draws them."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
    cfg.load_from = checkpoint
    if show or show_dir:
        if 'visualization' not in cfg.default_hooks:
            raise RuntimeError("--show/--show-dir need default_hooks.visualization "
                               "(dict(type='SegVisualizationHook')) in the config")
        hook = cfg.default_hooks.visualization
        hook.draw = True
        if show:
            hook.show = True
            hook.wait_time = wait_time
        if show_dir:
            cfg.visualizer.save_dir = show_dir
    if tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if out is not None:
        cfg.test_evaluator.output_dir = out
        cfg.test_evaluator.keep_results = True
    return cfg


def _uses_sync_bn(node) -> bool:
    if isinstance(node, dict):
        return node.get('type') == 'SyncBN' or any(_uses_sync_bn(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(_uses_sync_bn(v) for v in node)
    return False


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let ``torchrun`` runs work without CUDA: start the process group with gloo ourselves (so
    mmengine skips its GPU-only start) and wrap the model in DDP without device ids."""
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise ValueError(f"--launcher {cfg.launcher} needs GPUs; on CPU use --launcher pytorch (torchrun)")
    if _uses_sync_bn(cfg.model):
        raise ValueError('SyncBN needs GPUs, and this multi-process run is on CPU: add '
                         '--cfg-options model.decode_head.norm_cfg.type=BN (and the same for any other '
                         'norm_cfg of type SyncBN in the config)')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False)


def build_runner(cfg: Config) -> Runner:
    """mmengine's Runner, or the config's ``runner_type``."""
    prepare_cpu_distributed(cfg)
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def train(cfg: Config) -> Runner:
    """Train as ``tools/train.py`` does; returns the runner (its model is the trained one)."""
    runner = build_runner(cfg)
    runner.train()
    return runner


def test(cfg: Config) -> dict:
    """Evaluate as ``tools/test.py`` does (after ``setup_test``); returns the metrics."""
    return build_runner(cfg).test()


def default_device() -> str:
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def inference_overlay(image: str, config: str, checkpoint: str, out_file: str,
                      device: Optional[str] = None, opacity: float = 0.5) -> SegDataSample:
    """Segment one image (whole image, at the config's test scale) and write the coloured
    prediction blended over it to ``out_file``; returns mmseg's result."""
    for path, what in ((image, 'image'), (config, 'config'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} file not found: {path}')
    if not 0 < opacity <= 1:
        raise ValueError(f'opacity must be in (0, 1], got {opacity}')
    model = init_model(config, checkpoint, device=device or default_device())
    result = inference_model(model, image)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    show_result_pyplot(model, image, result, opacity=opacity, draw_gt=False, show=False,
                       with_labels=False, out_file=out_file)
    return result


def predicted_classes(result: SegDataSample) -> np.ndarray:
    """Class index per pixel, (H, W) int64, of an inference result."""
    return result.pred_sem_seg.data.squeeze(0).cpu().numpy().astype(np.int64)
