"""White-box L-infinity attacks in pixel space: FGSM (Goodfellow et al., 2015) and PGD (Madry et
al., 2018), untargeted, for any differentiable loss (classification or per-pixel segmentation).

Images are in [0, 1] before normalisation (the model normalises them itself), and epsilon and
step size are given in 0-255 pixel units, as papers state them (epsilon 1 = 1/255).

Not ``torchattacks``: its 3.5.1 wheel pins ``requests~=2.25.1``, which forces ``idna<3`` onto
an environment whose ``httpx2`` (under huggingface_hub) needs ``idna>=3.18``, and it installs a
top-level ``robustbench`` package of its own; its losses are also classification-only. The
two attacks are a few lines each, written here from the papers' formulas and tested against
them (``tests/test_robustness/test_attacks.py``).
"""
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn as nn

# A loss to ascend: images in [0, 1], (N, 3, H, W) -> a scalar summed (not averaged) over the
# batch, so that each image's gradient does not depend on the batch size.
LossFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class AttackSettings:
    """``eps`` and ``step_size`` in 0-255 pixel units."""
    eps: float = 1.
    steps: int = 5
    step_size: float = 0.5
    random_start: bool = True

    def __post_init__(self):
        if not 0 <= self.eps <= 255:
            raise ValueError(f'attack epsilon must be in 0..255 pixel units, got {self.eps}')
        if self.steps < 1:
            raise ValueError(f'PGD needs at least one step, got {self.steps}')
        if not 0 < self.step_size <= 255:
            raise ValueError(f'PGD step size must be in (0, 255] pixel units, got {self.step_size}')


def check_eval_mode(model: nn.Module) -> None:
    """Attacks are on the deployed model: dropout, drop path and batch statistics of train
    mode would attack (and score) a different, random function."""
    if model.training:
        raise ValueError(f'{type(model).__name__} is in train mode: call model.eval() before attacking it '
                         '(dropout, drop path and batch-norm statistics would make the attack random)')


def input_gradient(loss_fn: LossFn, images: torch.Tensor) -> torch.Tensor:
    """d loss / d images, without touching the parameters' ``.grad``."""
    images = images.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(images)
        (gradient,) = torch.autograd.grad(loss, images)
    return gradient


def fgsm(loss_fn: LossFn, images: torch.Tensor, eps: float) -> torch.Tensor:
    """One step of ``eps * sign(gradient)``, clipped to [0, 1]."""
    return (images + eps / 255. * input_gradient(loss_fn, images).sign()).clamp(0, 1).detach()


def pgd(loss_fn: LossFn, images: torch.Tensor, settings: AttackSettings,
        generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Madry et al.'s PGD: from a uniform random start in the eps-ball (``random_start``), take
    ``steps`` signed-gradient steps of ``step_size``, projecting after each onto the eps-ball
    around ``images`` and onto [0, 1]."""
    eps, step = settings.eps / 255., settings.step_size / 255.
    images = images.detach()
    adversarial = images.clone()
    if settings.random_start:
        noise = torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        adversarial = (adversarial + (2 * noise - 1) * eps).clamp(0, 1)
    for _ in range(settings.steps):
        adversarial = adversarial + step * input_gradient(loss_fn, adversarial).sign()
        adversarial = torch.min(torch.max(adversarial, images - eps), images + eps).clamp(0, 1).detach()
    return adversarial
