"""GFNet-H as an mmseg and mmdet backbone: the pyramid of ``gfnet.py`` with a LayerNorm per output.

One class, registered in mmseg's MODELS and, where mmdet is installed, in mmdet's MODELS too, so
that ``dict(type='GFNetH', ...)`` builds under ``default_scope='mmseg'`` and ``'mmdet'`` alike;
without mmdet the segmentation path imports as before.
"""
import copy
import sys
from typing import Sequence, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS as SEG_MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint import load_checkpoint
from ..gfnet import GFNetPyramid, arch_settings

_ARCH_KEYS = ('embed_dims', 'depths', 'layer_scale_init')


class GFNetH(GFNetPyramid, BaseModule):
    """GFNet-H backbone: NCHW feature maps at strides 4, 8, 16 and 32.

    Args:
        arch: 'h-ti', 'h-s', 'h-b', or a dict with ``embed_dims``, ``depths``, ``layer_scale_init``.
        img_size: the training crop, int or (h, w). Filters and the position embedding are built
            for it; other input sizes at run time get resized copies (cached per size in eval).
            In training, too, every batch's grid gets the stored filter and position embedding
            resized to it (bicubic, inside autograd: the gradients reach the stored tensors), so
            detection batches of varied padded sizes train one set of filters; the detection
            configs build them for the padded 1333x800 input, ``(800, 1344)``.
        in_channels: image channels.
        out_indices: stages whose outputs are returned, each through its own LayerNorm.
        mlp_ratio, drop_rate: as in GFNet.
        drop_path_rate: stochastic depth; None takes the arch's ImageNet value.
        frozen_stages: stages (and the stem) kept frozen in eval mode; -1 freezes nothing.
        norm_eval: put BatchNorm layers in eval mode while training. GFNet-H itself has only
            LayerNorm, so this matters only for subclasses that add BN; kept for mmseg configs.
        with_cp: recompute each block in the backward pass instead of keeping its activations
            (gradient checkpointing, as mmseg's Swin and MiT): less memory for large crops.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` loads an ImageNet checkpoint
            (official or from ``tools/train_cls.py``): the classifier is dropped, filters and
            the position embedding are resized to ``img_size``, and the result is logged.
    """

    def __init__(self, arch: Union[str, dict] = 'h-ti', img_size: Union[int, Sequence[int]] = 512,
                 in_channels: int = 3, out_indices: Sequence[int] = (0, 1, 2, 3), mlp_ratio: float = 4.,
                 drop_rate: float = 0., drop_path_rate: float = None, frozen_stages: int = -1,
                 norm_eval: bool = False, with_cp: bool = False, init_cfg: dict = None):
        if isinstance(arch, str):
            settings = arch_settings(arch)
        else:
            missing = [k for k in _ARCH_KEYS if k not in arch]
            if missing:
                raise ValueError(f'GFNetH arch dict lacks {missing}; it needs {list(_ARCH_KEYS)}')
            settings = dict(arch)
            settings.setdefault('drop_path_rate', 0.)
        if drop_path_rate is not None:
            settings['drop_path_rate'] = drop_path_rate
        super().__init__(img_size=img_size, in_chans=in_channels, num_classes=0, mlp_ratio=mlp_ratio,
                         drop_rate=drop_rate, **settings)
        self.init_cfg = copy.deepcopy(init_cfg)
        del self.norm, self.head_drop, self.head  # classification only
        num_stages = len(self.embed_dims)
        if not out_indices or any(not 0 <= i < num_stages for i in out_indices):
            raise ValueError(f'out_indices {out_indices} must be stage indices in 0..{num_stages - 1}')
        self.out_indices = tuple(out_indices)
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.embed_dims[i], eps=1e-6))
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.set_grad_checkpointing(with_cp)
        self._freeze_stages()

    def init_weights(self) -> None:
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            path = self.init_cfg['checkpoint']
            report = load_checkpoint(self, path)
            print_log(f'GFNetH: loaded {path}: {report.summary()}', logger='current')
            self._is_init = True
        else:
            super().init_weights()

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            self.pos_embed.requires_grad = False
        for i in range(self.frozen_stages + 1):
            for module in (self.patch_embed[i], self.blocks[i], getattr(self, f'norm{i}', None)):
                if module is not None:
                    module.eval()
                    for param in module.parameters():
                        param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple:
        stages = self.forward_stages(x)
        return tuple(getattr(self, f'norm{i}')(stages[i]).permute(0, 3, 1, 2).contiguous()
                     for i in self.out_indices)


def _register() -> None:
    """Put ``GFNetH`` in mmseg's MODELS and, when mmdet is installed, in mmdet's MODELS (the same
    class: configs of either scope build it). A missing mmdet is fine; a broken one raises."""
    SEG_MODELS.register_module(module=GFNetH)
    try:
        from mmdet.registry import MODELS as DET_MODELS
    except ModuleNotFoundError as err:
        # 'mmdet.registry' when mmdet is blocked (``sys.modules['mmdet'] = None``); another
        # missing module is a broken install: raise
        if err.name not in ('mmdet', 'mmdet.registry') or (err.name != 'mmdet' and sys.modules.get('mmdet')):
            raise
        return
    DET_MODELS.register_module(module=GFNetH)


_register()
