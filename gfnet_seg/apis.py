"""Train, test and inference behind ``tools/``: mmseg 1.2.2's and mmdet 3.3.0's tools as importable
functions, one set for both: a config's ``default_scope`` ('mmseg' or 'mmdet') decides.

The tools only parse flags; everything they do is here, so tests call the same code. One
addition to mmseg's and mmdet's tools: multi-process runs on machines without CUDA (``torchrun`` on
CPU), which mmengine does not support (it calls ``torch.cuda.set_device`` and gives DDP a GPU id).
"""
import contextlib
import logging
import os
import os.path as osp
from typing import Optional

import cv2
import mmcv
import numpy as np
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from mmengine.registry import OPTIM_WRAPPERS, RUNNERS
from mmseg.apis import inference_model, init_model, show_result_pyplot
from mmseg.structures import SegDataSample

from . import fileio
from .engine import check_data_config, fallback_checkpoint
from .models.checkpoint import UnsafeCheckpointError

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
# What the checks of gfnet_seg raise for bad input (DataCheckError and IncompleteFileError are
# ValueErrors; the models raise ValueError for an unknown arch, a too small input or a checkpoint
# of another arch), and a save that failed (WriteError: a full disk).
USER_ERRORS = (ValueError, FileNotFoundError, UnsafeCheckpointError, FloatingPointError, fileio.WriteError)


def is_detection(cfg: Config) -> bool:
    """A config of mmdet's scope (detection, instance segmentation), not mmseg's."""
    return cfg.get('default_scope') == 'mmdet'


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
    """``--resume`` (from the latest checkpoint in the work dir) and ``--amp``, as in mmseg;
    ``--amp`` on a machine without CUDA trains in bfloat16 with ``CPUAmpOptimWrapper``.

    A checkpoint to load (``load_from``) must be complete. Where ``last_checkpoint`` names a
    missing or incomplete file, ``--resume`` continues from the newest complete checkpoint.
    """
    if cfg.get('load_from'):
        fileio.check_checkpoint(cfg.load_from)
    elif resume:
        cfg.load_from = fallback_checkpoint(cfg.work_dir)
    if amp:
        wrapper = cfg.optim_wrapper.type
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        elif wrapper != 'OptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, the config has {wrapper}')
        elif torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        else:
            cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
    cfg.resume = resume
    return cfg


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``--amp`` without CUDA, which mmengine's AmpOptimWrapper requires: the forward pass and
    loss under CPU autocast in bfloat16. bfloat16 has float32's exponent range, so gradients
    need no loss scaling."""

    @contextlib.contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield


def setup_test(cfg: Config, checkpoint: str, out: Optional[str] = None, show: bool = False,
               show_dir: Optional[str] = None, wait_time: float = 2, tta: bool = False) -> Config:
    """Evaluate ``checkpoint``; ``show_dir`` draws the predictions; ``out`` keeps them: the
    predicted maps in that folder (segmentation), or all results in that ``.pkl`` file (detection,
    mmdet's ``DumpDetResults``)."""
    fileio.check_checkpoint(checkpoint)
    detection = is_detection(cfg)
    if out is not None and detection and not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out of a detection config is a .pkl file (mmdet), got {out}')
    cfg.load_from = checkpoint
    if show or show_dir:
        if 'visualization' not in cfg.default_hooks:
            kind = 'DetVisualizationHook' if detection else 'SegVisualizationHook'
            raise RuntimeError(f"--show/--show-dir need default_hooks.visualization (dict(type='{kind}')) "
                               'in the config')
        hook = cfg.default_hooks.visualization
        hook.draw = True
        hook.interval = 1  # every image, not the hook's default of every 50th
        if show:
            hook.show = True
            hook.wait_time = wait_time
        if show_dir and detection:
            hook.test_out_dir = osp.abspath(show_dir)  # mmdet joins it to the work dir otherwise
        elif show_dir:
            cfg.visualizer.save_dir = show_dir
    if tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if out is not None and detection:
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        cfg.test_evaluator = [*evaluators, dict(type='DumpDetResults', out_file_path=out)]
    elif out is not None:
        cfg.test_evaluator.output_dir = out
        cfg.test_evaluator.keep_results = True
    return cfg


def _sync_bn_cfgs(node) -> list:
    """The ``type='SyncBN'`` dicts in a config tree."""
    if isinstance(node, dict):
        found = [node] if node.get('type') == 'SyncBN' else []
        return found + [cfg for value in node.values() for cfg in _sync_bn_cfgs(value)]
    if isinstance(node, (list, tuple)):
        return [cfg for value in node for cfg in _sync_bn_cfgs(value)]
    return []


def prepare_cpu_distributed(cfg: Config, training: bool = True) -> None:
    """Let ``torchrun`` runs work without CUDA: start the process group with gloo ourselves (so
    mmengine skips its GPU-only start) and wrap the model in DDP without device ids. SyncBN
    cannot train on CPU; to evaluate, it becomes BN, which computes the same in eval mode."""
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise ValueError(f"--launcher {cfg.launcher} needs GPUs; on CPU use --launcher pytorch (torchrun)")
    sync_bn = _sync_bn_cfgs(cfg.model)
    if training and sync_bn:
        example = 'model.neck.norm_cfg' if is_detection(cfg) else 'model.decode_head.norm_cfg'
        raise ValueError('SyncBN needs GPUs, and this multi-process run is on CPU: add '
                         f'--cfg-options {example}.type=BN (and the same for any other '
                         'norm_cfg of type SyncBN in the config)')
    for norm_cfg in sync_bn:
        norm_cfg.type = 'BN'
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False)


def build_runner(cfg: Config, training: bool = True) -> Runner:
    """mmengine's Runner, or the config's ``runner_type``."""
    prepare_cpu_distributed(cfg, training)
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def train(cfg: Config) -> Runner:
    """Train as ``tools/train.py`` does; returns the runner (its model is the trained one)."""
    check_data_config(cfg, ('train_dataloader', 'val_dataloader'))
    runner = build_runner(cfg)
    runner.train()
    return runner


def test(cfg: Config) -> dict:
    """Evaluate as ``tools/test.py`` does (after ``setup_test``); returns the metrics."""
    check_data_config(cfg, ('test_dataloader',))
    return build_runner(cfg, training=False).test()


def exit_on_error():
    """For the tools: a mistake in the input (config, data, checkpoint, a diverging loss) or a
    failed save ends the process with ``error: <what is wrong>`` on one line and exit code 1,
    not a traceback."""
    return fileio.exit_on_error(USER_ERRORS)


def default_device() -> str:
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def inference_overlay(image: str, config: str, checkpoint: str, out_file: str,
                      device: Optional[str] = None, opacity: float = 0.5,
                      cfg_options: Optional[dict] = None, score_thr: float = 0.3):
    """Segment (or detect in) one image at the config's test scale and write the prediction drawn
    over it to ``out_file``: the coloured class map blended at ``opacity`` (segmentation), or the
    boxes and masks scoring at least ``score_thr`` (detection, mmdet's ``DetLocalVisualizer``).
    Returns mmseg's ``SegDataSample`` or mmdet's ``DetDataSample``. ``cfg_options`` overrides
    config settings, as ``--cfg-options`` of the other tools."""
    for path, what in ((image, 'image'), (config, 'config')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} file not found: {path}')
    fileio.check_checkpoint(checkpoint)
    if not 0 < opacity <= 1:
        raise ValueError(f'opacity must be in (0, 1], got {opacity}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if is_detection(cfg):
        return detection_overlay(image, cfg, checkpoint, out_file, device or default_device(), score_thr)
    model = init_model(cfg, checkpoint, device=device or default_device())
    result = inference_model(model, image)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    show_result_pyplot(model, image, result, opacity=opacity, draw_gt=False, show=False,
                       with_labels=False, out_file=out_file)
    return result


def detection_overlay(image: str, cfg: Config, checkpoint: str, out_file: str, device: str, score_thr: float):
    """``inference_overlay`` for a detection config: mmdet's ``init_detector``, ``inference_detector``
    and its visualizer, as mmdet's ``demo/image_demo.py``."""
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS

    model = init_detector(cfg, checkpoint, device=device)
    result = inference_detector(model, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    picture = mmcv.imread(image, channel_order='rgb')
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    visualizer.add_datasample('result', picture, result, draw_gt=False, show=False, pred_score_thr=score_thr)
    encoded = cv2.imencode(osp.splitext(out_file)[1] or '.png', mmcv.rgb2bgr(visualizer.get_image()))[1]
    fileio.atomic_write_bytes(out_file, encoded.tobytes())
    return result


def predicted_classes(result: SegDataSample) -> np.ndarray:
    """Class index per pixel, (H, W) int64, of an inference result."""
    return result.pred_sem_seg.data.squeeze(0).cpu().numpy().astype(np.int64)
