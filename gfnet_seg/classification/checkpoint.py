"""Training checkpoints and log: atomic saving, ``--resume`` and ``--finetune``.

A checkpoint is ``{'model', 'model_ema'?, 'optimizer', 'lr_scheduler', 'scaler'?, 'epoch',
'max_accuracy', 'args'}`` holding only tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``; ``model`` and ``model_ema`` use the official GFNet key names
and load unchanged into ``timm.create_model``, ``--finetune`` and ``GFNetH``'s ``init_cfg``.
Model weights are always read and fitted by ``gfnet_seg.models.checkpoint``; files are written
by ``gfnet_seg.fileio``, so a run killed while saving leaves the previous file whole.
"""
import json
import logging
import os
from typing import List, Optional, Tuple

import torch.nn as nn
from timm.utils import ModelEmaV3, NativeScaler

from ..fileio import atomic_write_bytes
from ..models.checkpoint import LoadReport, load_checkpoint, read_checkpoint

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = 'checkpoint.pth'
BEST_CHECKPOINT = 'checkpoint_best.pth'
LOG_FILE = 'log.txt'


def read_log(path: str, before_epoch: int) -> List[dict]:
    """The entries of an existing ``log.txt`` for the epochs before ``before_epoch``: a resumed run
    keeps them and writes the later ones again. A line that is not JSON (an edit, or a line torn
    by a writer that appends) is skipped with a warning: it never stops a run."""
    if not os.path.exists(path):
        return []
    entries = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning(f'{path}:{number}: skipping a line that is not JSON: {line[:80]!r}')
    earlier = [entry for entry in entries if isinstance(entry.get('epoch'), int) and entry['epoch'] < before_epoch]
    if len(earlier) < len(entries):
        logger.warning(f'{path}: dropping {len(entries) - len(earlier)} entries of epoch {before_epoch} '
                       'and later; this run logs them again')
    return earlier


def write_log(path: str, entries: List[dict]) -> None:
    """Rewrite ``log.txt`` atomically, one JSON line per epoch: a kill never leaves a torn line."""
    atomic_write_bytes(path, ''.join(json.dumps(entry) + '\n' for entry in entries).encode())


def training_state(model: nn.Module, optimizer, lr_scheduler, loss_scaler: Optional[NativeScaler],
                   model_ema: Optional[ModelEmaV3], epoch: int, max_accuracy: float, args: dict) -> dict:
    """Everything ``resume`` needs to continue after ``epoch``; ``model`` must be unwrapped from DDP."""
    state = {'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
             'lr_scheduler': lr_scheduler.state_dict(), 'epoch': epoch,
             'max_accuracy': max_accuracy, 'args': args}
    if model_ema is not None:
        state['model_ema'] = model_ema.module.state_dict()
    if loss_scaler is not None:
        state['scaler'] = loss_scaler.state_dict()
    return state


def load_pretrained(model: nn.Module, path: str) -> LoadReport:
    """``--finetune``: weights of any resolution; filters and position embedding are resized and
    a classifier of another shape is dropped (``gfnet_seg.models.checkpoint.load_checkpoint``).
    ``path`` is a ``.pth``, a safetensors file (by extension or content) or a folder in timm's
    Hugging Face layout (``config.json`` + ``model.safetensors``, from ``save_for_hf``)."""
    report = load_checkpoint(model, path)
    logger.info(f'fine-tuning from {path}: {report.summary()}')
    return report


def resume(path: str, model: nn.Module, optimizer=None, lr_scheduler=None,
           loss_scaler: Optional[NativeScaler] = None, model_ema: Optional[ModelEmaV3] = None,
           ) -> Tuple[int, float]:
    """Restore a checkpoint; returns ``(start_epoch, max_accuracy)``.

    The model is loaded strictly (sizes adapted, so an official 224 file evaluates at 384). The
    optimizer (whose state holds the learning rate of the next epoch), schedule, scaler and epoch
    are restored when ``optimizer`` is given and the file has them (an official file holds
    weights only, and training then starts at epoch 0).
    """
    checkpoint = read_checkpoint(path)
    load_checkpoint(model, checkpoint, strict=True)
    if model_ema is not None:
        if 'model_ema' in checkpoint:
            load_checkpoint(model_ema.module, checkpoint, strict=True, wrapper_key='model_ema')
        else:
            logger.warning(f'{path} has no model_ema; the EMA restarts from the loaded weights')
            model_ema.module.load_state_dict(model.state_dict())
    if optimizer is None or 'optimizer' not in checkpoint:
        logger.info(f'loaded the weights of {path}')
        return 0, 0.
    optimizer.load_state_dict(checkpoint['optimizer'])
    from_flags = lr_scheduler.state_dict()
    lr_scheduler.load_state_dict(checkpoint['lr_scheduler'])
    changed = sorted(k for k, v in lr_scheduler.state_dict().items() if from_flags.get(k) != v)
    if changed:
        logger.warning(f'the learning-rate schedule in {path} differs from the flags in {changed}; '
                       "resuming keeps the checkpoint's schedule")
    if loss_scaler is not None:
        if 'scaler' in checkpoint:
            loss_scaler.load_state_dict(checkpoint['scaler'])
        else:
            logger.warning(f'{path} has no AMP scaler state; the loss scale starts afresh')
    start_epoch = int(checkpoint['epoch']) + 1
    logger.info(f'resumed from {path} at epoch {start_epoch}')
    return start_epoch, float(checkpoint.get('max_accuracy', 0.))
