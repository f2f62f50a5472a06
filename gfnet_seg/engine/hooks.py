"""Hooks and a file backend that make a segmentation run safe to kill and resume.

* ``AtomicLocalBackend`` (``backend_args=dict(backend='atomic_local')`` on the CheckpointHook):
  checkpoints are written to a temporary file and renamed, so a kill during a save leaves the
  previous checkpoint intact.
* ``IterationSeedHook``: torch's generator is seeded from (seed, iteration, rank) before every
  training iteration, so dropout and drop path at iteration i do not depend on what ran before
  it (validation, a crash and ``--resume``). Together with mmengine's resume, which replays the
  data loader to the resumed iteration, a resumed run ends with the same weights as an
  uninterrupted one.
* ``StopOnInvalidLossHook``: a NaN/inf loss stops training with the iteration number, and no
  checkpoint with NaN/inf weights is ever written.
"""
import math
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ..fileio import atomic_write_bytes


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend with atomic writes (temporary file, fsync, rename)."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(str(filepath), obj.encode(encoding))


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """Seed torch from (seed, iteration, rank) before each training iteration."""

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        # Large strides keep the streams of different iterations and ranks apart.
        torch.manual_seed((runner.seed * 1_000_003 + runner.iter * 1009 + get_rank()) % 2 ** 63)


@HOOKS.register_module()
class StopOnInvalidLossHook(Hook):
    """Stop training at the first NaN/inf loss, and never save a checkpoint with NaN/inf weights.

    A non-finite loss raises ``FloatingPointError`` naming the iteration, before the checkpoint
    hook could save the poisoned weights. An update can also turn the weights non-finite while
    its own loss was finite (an overflowing gradient); the check of every saved tensor in
    ``before_save_checkpoint`` catches that one, so the last checkpoint on disk is always one to
    resume from.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW) can save this iteration

    def before_train(self, runner) -> None:
        # The checkpoint hook announces a file before it is written; this one is known good.
        self._last_saved = runner.message_hub.get_info('last_ckpt')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        if loss is None:
            return
        value = float(torch.as_tensor(loss).detach())
        if not math.isfinite(value):
            self._stop(runner, f'loss is {value}', runner.iter + 1)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key, value in checkpoint.get('state_dict', {}).items():
            if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
                self._stop(runner, f'weight {key} is not finite', checkpoint['meta']['iter'])
        self._last_saved = runner.message_hub.get_info('last_ckpt')

    def _stop(self, runner, problem: str, iteration: int) -> None:
        last = self._last_saved
        kept = f'last checkpoint kept: {last}' if last else 'no checkpoint was saved yet'
        raise FloatingPointError(
            f'{problem} at iteration {iteration}; training stopped ({kept}). Lower the '
            f'learning rate, check the data, or resume with --resume from '
            f'{osp.dirname(last) if last else runner.work_dir}.')
