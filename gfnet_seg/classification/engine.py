"""One training epoch and one evaluation pass (DeiT's engine.py on timm's parts)."""
import datetime
import logging
import math
import time
from typing import Iterable, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from timm.data import Mixup
from timm.utils import ModelEmaV3, NativeScaler, accuracy, dispatch_clip_grad

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the trainer adds which checkpoint is kept."""


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sum(values, device: torch.device) -> list:
    """Sum a list of numbers over all processes (no-op in a single process)."""
    if world_size() == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def autocast(device: torch.device, amp_dtype: Optional[torch.dtype]):
    return torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)


def train_one_epoch(model: nn.Module, criterion: nn.Module, data_loader: Iterable,
                    optimizer: torch.optim.Optimizer, device: torch.device, epoch: int,
                    loss_scaler: Optional[NativeScaler] = None, amp_dtype: Optional[torch.dtype] = None,
                    clip_grad: Optional[float] = None, model_ema: Optional[ModelEmaV3] = None,
                    mixup_fn: Optional[Mixup] = None, log_interval: int = 50) -> dict:
    """Train for one pass over ``data_loader``; returns the mean loss over all processes and the lr.

    ``loss_scaler`` (float16 AMP) scales the loss and clips the unscaled gradients; the EMA is
    updated after every step with the global step count, so a resumed run continues its decay.
    The losses in the periodic log lines are averaged over all processes: the same numbers as
    one process with the whole batch. A NaN or infinite loss raises ``NonFiniteLossError``
    before the step that would spread it into the weights.
    """
    model.train()
    num_steps = len(data_loader)
    if num_steps == 0:
        raise ValueError('the training data loader yields no batch: the data set has fewer images '
                         'per process than --batch-size (the last incomplete batch is dropped)')
    first_update = epoch * num_steps
    loss_sum = samples = 0.
    start = window_start = time.time()
    window_images = 0
    for step, (images, targets) in enumerate(data_loader):
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if mixup_fn is not None:
            images, targets = mixup_fn(images, targets)
        with autocast(device, amp_dtype):
            loss = criterion(model(images), targets)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(f'loss is {loss_value} at epoch {epoch}, iteration {step + 1}/{num_steps} '
                                     f'(iteration {first_update + step + 1} of the run)')

        optimizer.zero_grad(set_to_none=True)
        if loss_scaler is not None:
            loss_scaler(loss, optimizer, clip_grad=clip_grad or None, parameters=model.parameters())
        else:
            loss.backward()
            if clip_grad:
                dispatch_clip_grad(model.parameters(), clip_grad)
            optimizer.step()
        if model_ema is not None:
            model_ema.update(model, step=first_update + step + 1)

        batch = images.shape[0]
        loss_sum += loss_value * batch
        samples += batch
        window_images += batch
        if (step + 1) % log_interval == 0 or step + 1 == num_steps:
            batch_loss, batch_total, epoch_loss, epoch_samples = all_reduce_sum(
                [loss_value * batch, batch, loss_sum, samples], device)
            now = time.time()
            eta = (now - start) / (step + 1) * (num_steps - step - 1)
            logger.info(f'Epoch [{epoch}][{step + 1}/{num_steps}]  '
                        f'eta {datetime.timedelta(seconds=int(eta))}  lr {optimizer.param_groups[0]["lr"]:.3e}  '
                        f'loss {batch_loss / batch_total:.4f} ({epoch_loss / epoch_samples:.4f})  '
                        f'{window_images * world_size() / max(now - window_start, 1e-9):.1f} imgs/s')
            window_start, window_images = now, 0
    loss_sum, samples = all_reduce_sum([loss_sum, samples], device)
    return {'loss': loss_sum / samples, 'lr': optimizer.param_groups[0]['lr']}


@torch.no_grad()
def evaluate(model: nn.Module, data_loader: Iterable, device: torch.device,
             amp_dtype: Optional[torch.dtype] = None, reduce: bool = False) -> dict:
    """acc1, acc5 (in %) and cross-entropy on ``data_loader``.

    ``reduce=True`` when each process holds a disjoint shard (``--dist-eval``): counts are summed
    over processes, so the numbers are those of the whole split.
    """
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction='sum')
    loss_sum = correct1 = correct5 = samples = 0.
    for images, targets in data_loader:
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            outputs = model(images)
        outputs = outputs.float()
        acc1, acc5 = accuracy(outputs, targets, topk=(1, 5))
        batch = images.shape[0]
        loss_sum += criterion(outputs, targets).item()
        correct1 += acc1.item() * batch / 100.
        correct5 += acc5.item() * batch / 100.
        samples += batch
    if reduce:
        loss_sum, correct1, correct5, samples = all_reduce_sum([loss_sum, correct1, correct5, samples], device)
    if samples == 0:
        raise ValueError('the validation data loader yields no image')
    return {'acc1': 100. * correct1 / samples, 'acc5': 100. * correct5 / samples,
            'loss': loss_sum / samples, 'images': int(samples)}
