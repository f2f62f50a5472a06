"""Hooks and a file backend that make a long run safe to kill and resume.

Registered in mmengine's root ``HOOKS``, so that configs of every scope find them (mmseg's and mmdet's
registries look a type up in their parent when they lack it).

* ``AtomicLocalBackend`` (``backend_args=dict(backend='atomic_local')`` on the CheckpointHook):
  checkpoints are written to a temporary file and renamed, so a kill during a save leaves the
  previous checkpoint intact.
* ``SafeCheckpointHook``: mmengine's CheckpointHook without its windows of loss. mmengine deletes
  the checkpoints beyond ``max_keep_ckpts`` (and the previous best) *before* it writes the new
  one, and writes ``last_checkpoint`` with a plain ``open``; this hook deletes only once the new
  file is complete, writes the pointer atomically, stops a run whose save fails (a full disk)
  naming the file and the checkpoint kept, and removes the temporary files of a killed save
  when the run starts again.
* ``fallback_checkpoint``: what ``--resume`` continues from when ``last_checkpoint`` names a
  missing or incomplete file: the newest complete checkpoint in the work dir.
* ``IterationSeedHook``: torch's generator is seeded from (seed, iteration, rank) before every
  training iteration, so dropout and drop path at iteration i do not depend on what ran before
  it (validation, a crash and ``--resume``). Together with mmengine's resume, which replays the
  data loader to the resumed iteration, a resumed run ends with the same weights as an
  uninterrupted one.
* ``StopOnInvalidLossHook``: a NaN/inf loss stops training with the iteration number, and no
  checkpoint with NaN/inf weights is ever written.
"""
import contextlib
import glob
import logging
import math
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import get_rank, is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..fileio import WriteError, atomic_write_bytes, checkpoint_problem, remove_temporary_files

POINTER = 'last_checkpoint'  # mmengine's file naming the checkpoint --resume continues from


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend with atomic writes (temporary file, fsync, rename)."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(str(filepath), obj.encode(encoding))


class _DeferredRemovals:
    """A file backend whose ``remove``/``rmtree`` only note the path; ``perform`` runs them."""

    def __init__(self, backend):
        self._backend, self.paths = backend, []

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def remove(self, path) -> None:
        self.paths.append(path)

    def rmtree(self, path) -> None:
        self.paths.append(path)

    def perform(self) -> None:
        for path in self.paths:
            _remove(self._backend, path)


def _remove(backend, path) -> None:
    if backend.isfile(path):
        backend.remove(path)
    elif backend.isdir(path):  # checkpoints saved by deepspeed are folders
        backend.rmtree(path)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) that never leaves a window without a
    complete checkpoint: outdated and previous-best checkpoints are deleted only after the new
    file is complete, ``last_checkpoint`` is written atomically, and a failed save stops the run
    with one line naming the file, the error and the checkpoint kept. Use it with
    ``backend_args=dict(backend='atomic_local')`` so the checkpoint itself is written atomically.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        # A save killed halfway left its temporary file; nothing is being written yet.
        if is_main_process():
            for folder in sorted({self.out_dir, runner.work_dir}):
                removed = remove_temporary_files(folder)
                if removed:
                    runner.logger.warning(f'removed {len(removed)} temporary file(s) left in {folder} by '
                                          f'a save that was interrupted: {", ".join(removed)}')
        self._complete = runner.message_hub.get_info('last_ckpt')  # resumed from it: complete

    @contextlib.contextmanager
    def _removals_after_save(self):
        """Run mmengine's saving logic with its deletions held back until it has saved."""
        backend = self.file_backend
        deferred = self.file_backend = _DeferredRemovals(backend)
        try:
            yield
        finally:
            self.file_backend = backend
        if is_main_process():
            deferred.perform()

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self._removals_after_save():
            super()._save_best_checkpoint(runner, metrics)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        stale = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale.append(self.keep_ckpt_ids[0])
            self.keep_ckpt_ids.append(step)  # a deque of max_keep_ckpts: drops the stale step
            # The new checkpoint still lists the stale one: a run killed before deleting it
            # deletes it when resumed (CheckpointHook.before_train trims the list).
            runner.message_hub.update_info('keep_ckpt_ids', stale + list(self.keep_ckpt_ids))
        self.last_ckpt = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            runner.save_checkpoint(
                self.out_dir, self.filename_tmpl.format(step), self.file_client_args,
                save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
                meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            if is_main_process():
                atomic_write_bytes(osp.join(runner.work_dir, POINTER), str(self.last_ckpt).encode())
        except WriteError as err:
            kept = f'last checkpoint kept: {self._complete}' if self._complete else 'no checkpoint was saved yet'
            raise WriteError(f'{err}; training stopped ({kept}). Free some space, then continue with '
                             '--resume') from None
        self._complete = self.last_ckpt
        if stale:
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
            if is_main_process():
                for old in stale:
                    _remove(self.file_backend, self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old)))


def fallback_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` should continue from when ``last_checkpoint`` does not name a
    complete file: the newest complete ``*.pth`` in ``work_dir``. None when the pointer is sound,
    or when there is neither pointer nor checkpoint (a fresh start). Each file passed over is
    logged with the reason; ``FileNotFoundError`` when checkpoints exist but none is complete.
    """
    pointer = osp.join(work_dir, POINTER)
    named = ''
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
    if named:
        problem = checkpoint_problem(named)
        if not problem:
            return None
        _warn(f'--resume: skipping {named}, which {pointer} names: it {problem}')
    skipped = [named] if named else []
    candidates = [path for path in glob.glob(osp.join(work_dir, '*.pth')) if osp.abspath(path) != osp.abspath(named)]
    for path in sorted(candidates, key=osp.getmtime, reverse=True):
        problem = checkpoint_problem(path)
        if not problem:
            if skipped:
                _warn(f'--resume: resuming from {path}, the newest complete checkpoint in {work_dir}')
            return path
        _warn(f'--resume: skipping {path}: it {problem}')
        skipped.append(path)
    if skipped:
        raise FileNotFoundError(f'--resume: no complete checkpoint in {work_dir} (skipped: {", ".join(skipped)}); '
                                f'delete {pointer} to train from the start')
    return None


def _warn(message: str) -> None:
    print_log(message, logger='current', level=logging.WARNING)


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
