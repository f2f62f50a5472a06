"""``tools/train_cls.py``'s work: train or evaluate a GFNet on an ImageNet-layout folder.

The GFNet/DeiT recipe from timm's parts: ``create_transform`` with RandAugment and random
erasing, repeated augmentation, ``Mixup``/CutMix with ``SoftTargetCrossEntropy``,
``create_optimizer_v2`` (AdamW, no decay on norms, biases and the position embedding),
``create_scheduler_v2`` (cosine with warm-up, stepped per epoch), ``ModelEmaV3``, gradient
clipping and AMP. Runs in one process or under ``torchrun`` (gloo on CPU, nccl on CUDA).
"""
import datetime
import logging
import os
import sys
import time
from typing import Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
from timm.data.distributed_sampler import RepeatAugSampler
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3, NativeScaler, random_seed
from timm.utils.distributed import init_distributed_device_so
from torch.utils.data import DataLoader, DistributedSampler, SequentialSampler

from ..fileio import WriteError, atomic_torch_save, check_checkpoint, exit_on_error, remove_temporary_files
from ..models.checkpoint import UnsafeCheckpointError
from ..models.gfnet import arch_settings, create_gfnet
from .checkpoint import (BEST_CHECKPOINT, LAST_CHECKPOINT, LOG_FILE, load_pretrained, read_log, resume,
                         training_state, write_log)
from .config import args_to_dict, parse_args
from .data import build_dataset, build_mixup, check_images, check_same_classes
from .engine import NonFiniteLossError, evaluate, train_one_epoch

logger = logging.getLogger(__name__)
LOGGER_NAME = __name__.rpartition('.')[0]
# DeiT's linear scaling rule: --lr is the learning rate for this total batch size.
LR_REFERENCE_BATCH = 512
# What tools/train_cls.py reports in one line, without a traceback: mistakes in the flags, data or
# checkpoints (IncompleteFileError is a ValueError), a diverging loss, a save that failed.
USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError, UnsafeCheckpointError, WriteError)


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a line is logged: tests and notebooks replace it."""

    def __init__(self):
        super().__init__(sys.stdout)
        self.setFormatter(logging.Formatter('%(asctime)s %(message)s', '%m/%d %H:%M:%S'))

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _):
        pass


def setup_logging(primary: bool) -> None:
    """INFO lines on stdout from the primary process; only warnings from the others."""
    package_logger = logging.getLogger(LOGGER_NAME)
    package_logger.setLevel(logging.INFO if primary else logging.WARNING)
    package_logger.propagate = False
    if not any(isinstance(handler, StdoutHandler) for handler in package_logger.handlers):
        package_logger.addHandler(StdoutHandler())


def build_model(args, num_classes: int) -> nn.Module:
    """``create_gfnet(--arch)`` at ``--input-size``; ``--embed-dims``/``--depths`` override widths."""
    pyramid = 'embed_dims' in arch_settings(args.arch)
    kwargs = dict(img_size=args.input_size, num_classes=num_classes, drop_rate=args.drop)
    if args.drop_path is not None:
        kwargs['drop_path_rate'] = args.drop_path
    for flag, pyramid_key, isotropic_key in (('embed_dims', 'embed_dims', 'embed_dim'), ('depths', 'depths', 'depth')):
        values = getattr(args, flag)
        if values is None:
            continue
        if pyramid:
            kwargs[pyramid_key] = tuple(values)
        elif len(values) == 1:
            kwargs[isotropic_key] = values[0]
        else:
            raise ValueError(f'--{flag.replace("_", "-")}: {args.arch} is isotropic and takes one value, got {values}')
    if pyramid and len(kwargs.get('embed_dims', (0,) * 4)) != len(kwargs.get('depths', (0,) * 4)):
        raise ValueError('--embed-dims and --depths must give one value per stage of ' + args.arch)
    return create_gfnet(args.arch, **kwargs)


def resolve_amp(args, device: torch.device) -> Tuple[Optional[torch.dtype], Optional[NativeScaler]]:
    """AMP dtype (None: off) and the loss scaler float16 needs."""
    if not (args.amp if args.amp is not None else device.type == 'cuda'):
        return None, None
    dtype = getattr(torch, args.amp_dtype or ('float16' if device.type == 'cuda' else 'bfloat16'))
    return dtype, NativeScaler(device=device.type) if dtype == torch.float16 else None


def build_loaders(args, rank: int, world: int) -> Tuple[Optional[DataLoader], DataLoader, int]:
    """Train (None with ``--eval``) and val loaders, and the number of classes.

    Training drops the last incomplete batch (mixup pairs images within a batch). Its sampler
    shuffles by seed and epoch and deals the order out to the processes in turn, so step ``i``
    covers the same images whatever the number of processes sharing the total batch.
    ``--dist-eval`` gives each process a disjoint shard of val, without the padding a
    DistributedSampler adds. ``--check-images`` opens every image first.
    """
    val_set, num_classes = build_dataset(False, args)
    common = dict(num_workers=args.num_workers, pin_memory=args.pin_mem and torch.cuda.is_available())
    val_sampler = range(rank, len(val_set), world) if args.dist_eval and world > 1 else SequentialSampler(val_set)
    val_loader = DataLoader(val_set, sampler=val_sampler, batch_size=int(1.5 * args.batch_size), **common)
    if args.eval:
        logger.info(f'{args.data_set} at {args.data_path}: {len(val_set)} val images, {num_classes} classes')
        _check_images(args, {'val': val_set}, rank, world)
        return None, val_loader, num_classes

    train_set, _ = build_dataset(True, args)
    check_same_classes(train_set, val_set, args.data_path)
    logger.info(f'{args.data_set} at {args.data_path}: {len(train_set)} train and {len(val_set)} val images, '
                f'{num_classes} classes')
    _check_images(args, {'train': train_set, 'val': val_set}, rank, world)
    if args.repeated_aug:
        train_sampler = RepeatAugSampler(train_set, num_replicas=world, rank=rank, shuffle=True)
    else:
        train_sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    train_loader = DataLoader(train_set, sampler=train_sampler, batch_size=args.batch_size, drop_last=True, **common)
    return train_loader, val_loader, num_classes


def _check_images(args, sets: dict, rank: int, world: int) -> None:
    """``--check-images``: each process opens its share of the image headers of every set."""
    if not args.check_images:
        return
    share = f' (1/{world} of them, on each process)' if world > 1 else ''
    for name, dataset in sets.items():
        count = check_images(dataset, name, rank, world, args.num_workers)
        if count:
            logger.info(f'{name}: {count} images open cleanly{share}')


def effective_lr(args, world: int) -> float:
    """``--lr`` scaled to the total batch (DeiT's linear rule), unless ``--unscale-lr``."""
    return args.lr if args.unscale_lr else args.lr * args.batch_size * world / LR_REFERENCE_BATCH


def build_optimizer(args, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """timm's ``create_optimizer_v2``: weight decay on the weight matrices and filters only; biases,
    norms, layer scales (all 1-D) and ``model.no_weight_decay()`` (the position embedding) get none."""
    kwargs = {key: value for key, value in (('eps', args.opt_eps), ('betas', args.opt_betas)) if value is not None}
    return create_optimizer_v2(model, opt=args.opt, lr=lr, weight_decay=args.weight_decay, momentum=args.momentum,
                               **kwargs)


def build_criterion(args, mixup_active: bool) -> nn.Module:
    if mixup_active:  # mixup already smooths the targets
        return SoftTargetCrossEntropy()
    if args.smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=args.smoothing)
    return nn.CrossEntropyLoss()


def main(args=None) -> dict:
    """Train (or with ``--eval`` evaluate) as the flags say; returns the last stats.

    ``args`` is a parsed namespace or a list of command-line flags (None: ``sys.argv``).
    """
    if args is None or isinstance(args, (list, tuple)):
        args = parse_args(args)
    device_name = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    dist_info = init_distributed_device_so(device=device_name)
    try:
        return run(args, torch.device(dist_info['device']), dist_info['global_rank'], dist_info['world_size'])
    finally:
        if dist_info['distributed']:
            dist.destroy_process_group()


def cli(argv=None) -> None:
    """``tools/train_cls.py``: ``main`` with ``USER_ERRORS`` as ``error: ...`` and exit code 1."""
    with exit_on_error(USER_ERRORS):
        main(argv)


def _resume_hint(kept_checkpoint: Optional[Tuple[str, int]], advice: str = '') -> str:
    if kept_checkpoint is None:
        return 'No checkpoint was written yet.'
    path, epoch = kept_checkpoint
    return f'The checkpoint of epoch {epoch}, {path}, is intact: continue with --resume {path}{advice}.'


def run(args, device: torch.device, rank: int, world: int) -> dict:
    primary = rank == 0
    setup_logging(primary)
    arch_settings(args.arch)  # an unknown --arch fails now, listing the valid ones, not after reading the data
    if args.eval and not (args.resume or args.finetune):
        raise ValueError('--eval needs the weights to evaluate: --resume CHECKPOINT')
    for checkpoint in filter(None, (args.resume, args.finetune)):
        check_checkpoint(checkpoint)  # a missing or truncated file is named now, not after the data check
    random_seed(args.seed, rank)
    train_loader, val_loader, num_classes = build_loaders(args, rank, world)
    model = build_model(args, num_classes)
    if args.finetune:
        load_pretrained(model, args.finetune)
    model.to(device)
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(f'{args.arch} at {args.input_size}px, {num_classes} classes: {n_parameters / 1e6:.2f}M parameters')
    amp_dtype, loss_scaler = resolve_amp(args, device)
    reduce_eval = args.dist_eval and world > 1

    if args.eval:
        if args.resume:
            resume(args.resume, model)
        stats = evaluate(model, val_loader, device, amp_dtype, reduce=reduce_eval)
        logger.info(f"* Acc@1 {stats['acc1']:.3f} Acc@5 {stats['acc5']:.3f} loss {stats['loss']:.3f} "
                    f"on {stats['images']} images")
        return stats

    lr = effective_lr(args, world)
    optimizer = build_optimizer(args, model, lr)
    lr_scheduler, _ = create_scheduler_v2(
        optimizer, sched=args.sched, num_epochs=args.epochs, warmup_epochs=args.warmup_epochs,
        warmup_lr=args.warmup_lr, min_lr=args.min_lr, decay_epochs=args.decay_epochs, decay_rate=args.decay_rate)
    model_ema = ModelEmaV3(model, decay=args.model_ema_decay) if args.model_ema else None
    mixup_fn = build_mixup(args, num_classes)
    criterion = build_criterion(args, mixup_fn is not None)
    start_epoch, max_accuracy = args.start_epoch, 0.
    if args.resume:
        start_epoch, max_accuracy = resume(args.resume, model, optimizer, lr_scheduler, loss_scaler, model_ema)
    model_without_ddp = model
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == 'cuda' else None)
    last_path, best_path = (os.path.join(args.output_dir, name) for name in (LAST_CHECKPOINT, BEST_CHECKPOINT))
    log_path = os.path.join(args.output_dir, LOG_FILE)
    log = []
    if args.output_dir and primary:
        os.makedirs(args.output_dir, exist_ok=True)
        removed = remove_temporary_files(args.output_dir)  # of a save that was killed halfway
        if removed:
            logger.warning(f'removed {len(removed)} temporary file(s) left in {args.output_dir} by a save '
                           f'that was interrupted: {", ".join(removed)}')
        log = read_log(log_path, before_epoch=start_epoch)
    kept_checkpoint = (args.resume, start_epoch - 1) if args.resume and start_epoch > 0 else None

    logger.info(f'training epochs {start_epoch}..{args.epochs - 1} on {world} process(es), lr {lr:.3e} '
                f'for a total batch of {args.batch_size * world}')
    start_time = time.time()
    stats = {}
    for epoch in range(start_epoch, args.epochs):
        # Randomness of each epoch comes from (seed, epoch, rank) only, so a resumed run repeats
        # the epochs an uninterrupted one would have run.
        random_seed(args.seed + (epoch + 1) * world, rank)
        if hasattr(train_loader.sampler, 'set_epoch'):
            train_loader.sampler.set_epoch(epoch)
        try:
            train_stats = train_one_epoch(model, criterion, train_loader, optimizer, device, epoch,
                                          loss_scaler=loss_scaler, amp_dtype=amp_dtype, clip_grad=args.clip_grad,
                                          model_ema=model_ema, mixup_fn=mixup_fn, log_interval=args.log_interval)
        except NonFiniteLossError as err:
            advice = ', perhaps with a lower --lr, a longer --warmup-epochs or --clip-grad'
            raise NonFiniteLossError(f'{err}: training stopped. {_resume_hint(kept_checkpoint, advice)}') from None
        test_stats = evaluate(model, val_loader, device, amp_dtype, reduce=reduce_eval)
        lr_scheduler.step(epoch + 1, test_stats['acc1'])  # the metric matters to 'plateau' only
        stats = {'epoch': epoch, **{f'train_{k}': v for k, v in train_stats.items()},
                 **{f'test_{k}': v for k, v in test_stats.items()}}
        if model_ema is not None:
            ema_stats = evaluate(model_ema.module, val_loader, device, amp_dtype, reduce=reduce_eval)
            stats.update({f'test_ema_{k}': v for k, v in ema_stats.items() if k != 'images'})
        is_best = test_stats['acc1'] > max_accuracy or not os.path.exists(best_path)
        max_accuracy = max(max_accuracy, test_stats['acc1'])
        stats.update(max_accuracy=max_accuracy, n_parameters=n_parameters)
        logger.info(f"Epoch [{epoch}] Acc@1 {test_stats['acc1']:.3f} Acc@5 {test_stats['acc5']:.3f} "
                    f"loss {test_stats['loss']:.3f}; max Acc@1 {max_accuracy:.3f}")
        if args.output_dir and primary:
            # checkpoint.pth goes last: a run killed before it is resumed from the previous epoch,
            # which it redoes, rewriting that epoch's log line and best checkpoint.
            log.append(stats)
            state = training_state(model_without_ddp, optimizer, lr_scheduler, loss_scaler, model_ema, epoch,
                                   max_accuracy, args_to_dict(args))
            try:
                write_log(log_path, log)
                if is_best:
                    atomic_torch_save(state, best_path)
                atomic_torch_save(state, last_path)
            except WriteError as err:  # a full disk: every file written so far is whole
                raise WriteError(f'{err}; training stopped. {_resume_hint(kept_checkpoint, " once there is space")}') from None
        if args.output_dir:
            kept_checkpoint = (last_path, epoch)
    logger.info(f'training time {datetime.timedelta(seconds=int(time.time() - start_time))}')
    return stats

