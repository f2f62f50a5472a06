"""``mmcv.ops`` for mmcv-lite: the source of the ``mmcv.ops`` package when mmcv's compiled ops are absent.

This file is never imported as ``gfnet_seg.mmcv_ops``: the import hook of ``gfnet_seg/compat.py``
executes it *as* ``mmcv.ops`` (its ``__name__`` is ``'mmcv.ops'``) in any program of an
environment where gfnet-seg is installed, the first time something imports ``mmcv.ops``.

What ``mmcv.ops`` then holds:

* pure-PyTorch versions (on ``torchvision.ops`` where it computes what mmcv does) of what mmseg's and mmdet's
  RetinaNet, Faster/Mask R-CNN and the point heads run: ``nms``, ``batched_nms``, ``RoIAlign`` /
  ``roi_align``, ``RoIPool`` / ``roi_pool``, ``sigmoid_focal_loss`` / ``SigmoidFocalLoss``, and the
  build-information functions;
* mmcv-lite's own modules that need no compiled code, loaded from mmcv-lite itself
  (``point_sample``, ``merge_cells``, ``cc_attention``, ``corner_pool``, ...);
* every other name of mmcv's ``ops`` (and of its submodules) as a stand-in that imports, so that
  mmdet's and mmseg's module-level imports succeed, and raises one line naming the op when used.

Submodules (``mmcv.ops.nms``, ``mmcv.ops.roi_align``, ...) are made by the same hook and resolve
their names here.
"""
import ast
import importlib
import os.path as osp
import sys
import types
from functools import lru_cache
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.nn.modules.utils import _pair

# The folder of mmcv-lite's own (uncompiled) ops sources, read for the names they define.
MMCV_OPS_SOURCES = osp.join(osp.dirname(importlib.import_module('mmcv').__file__), 'ops')
# Ops implemented in this file, by the mmcv submodule that defines them.
IMPLEMENTED = {
    'nms': ('nms', 'batched_nms'),
    'roi_align': ('RoIAlign', 'roi_align'),
    'roi_pool': ('RoIPool', 'roi_pool'),
    'focal_loss': ('SigmoidFocalLoss', 'sigmoid_focal_loss'),
    'info': ('get_compiler_version', 'get_compiling_cuda_version'),
}
__path__ = []  # a package: submodules come from gfnet_seg.compat's import hook


# ---------------------------------------------------------------------------------------------
# NMS
def _as_tensor(x):
    return torch.from_numpy(x) if isinstance(x, np.ndarray) else x


def nms(boxes, scores, iou_threshold: float, offset: int = 0, score_threshold: float = 0,
        max_num: int = -1):
    """``mmcv.ops.nms``: greedy NMS of (N, 4) x1y1x2y2 boxes. Returns ``(dets, keep)``: the kept
    boxes with their score appended (N', 5), highest score first, and their indices.

    ``offset=1`` measures widths as ``x2 - x1 + 1`` (legacy); ``score_threshold`` drops boxes at or
    below it before NMS; ``max_num > 0`` keeps at most that many. NumPy inputs give NumPy outputs.
    """
    if offset not in (0, 1):
        raise ValueError(f'mmcv.ops.nms: offset must be 0 or 1, got {offset}')
    is_numpy = isinstance(boxes, np.ndarray)
    boxes, scores = _as_tensor(boxes), _as_tensor(scores)
    if boxes.size(1) != 4 or boxes.size(0) != scores.size(0):
        raise ValueError(f'mmcv.ops.nms: boxes must be (N, 4) and scores (N,), got {tuple(boxes.shape)} '
                         f'and {tuple(scores.shape)}')
    candidates = torch.arange(boxes.size(0), device=boxes.device)
    if score_threshold > 0:
        candidates = candidates[scores > score_threshold]
    nms_boxes = boxes[candidates].float()
    if offset == 1:  # IoU with (x2 - x1 + 1) widths equals the plain IoU of boxes grown by 1
        nms_boxes = nms_boxes + nms_boxes.new_tensor([0., 0., 1., 1.])
    keep = candidates[torchvision.ops.nms(nms_boxes, scores[candidates].float(), float(iou_threshold))]
    if max_num > 0:
        keep = keep[:max_num]
    dets = torch.cat((boxes[keep], scores[keep].reshape(-1, 1).to(boxes.dtype)), dim=1)
    if is_numpy:
        return dets.numpy(), keep.numpy()
    return dets, keep


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, nms_cfg: Optional[Dict],
                class_agnostic: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """``mmcv.ops.batched_nms``: NMS within each class ``idxs`` (or across classes).

    ``nms_cfg``: ``dict(type='nms', iou_threshold=..., class_agnostic=..., split_thr=..., max_num=...)``
    or None (no NMS: all boxes sorted by score). Below ``split_thr`` boxes (default 10000) the
    classes are separated by offsetting their coordinates and one NMS runs; above it, one NMS per
    class. Returns ``(dets, keep)``: (N', 5) boxes with scores, highest score first, and indices.
    """
    if nms_cfg is None:
        scores, order = scores.sort(descending=True)
        return torch.cat((boxes[order], scores[:, None]), -1), order
    cfg = dict(nms_cfg)
    class_agnostic = cfg.pop('class_agnostic', class_agnostic)
    nms_type = cfg.pop('type', 'nms')
    if nms_type != 'nms':
        _missing(nms_type)()
    split_thr = cfg.pop('split_thr', 10000)
    max_num = cfg.pop('max_num', -1)
    if boxes.size(-1) != 4:
        _missing('nms_rotated')()
    if class_agnostic:
        boxes_for_nms = boxes
    else:  # shift each class to its own region so boxes of different classes never overlap
        shift = idxs.to(boxes) * (boxes.max() + 1)
        boxes_for_nms = boxes + shift[:, None]
    if boxes_for_nms.size(0) < split_thr:
        dets, keep = nms(boxes_for_nms, scores, **cfg)
        kept_scores = dets[:, -1]
    else:
        kept = []
        for label in torch.unique(idxs):
            members = (idxs == label).nonzero(as_tuple=False).view(-1)
            kept.append(members[nms(boxes_for_nms[members], scores[members], **cfg)[1]])
        keep = torch.cat(kept) if kept else idxs.new_zeros(0, dtype=torch.long)
        kept_scores, order = scores[keep].sort(descending=True)
        keep = keep[order]
    if max_num > 0:
        keep, kept_scores = keep[:max_num], kept_scores[:max_num]
    return torch.cat((boxes[keep], kept_scores[:, None]), -1), keep


# ---------------------------------------------------------------------------------------------
# RoI pooling
def roi_align(input: torch.Tensor, rois: torch.Tensor, output_size, spatial_scale: float = 1.0,
              sampling_ratio: int = 0, pool_mode: str = 'avg', aligned: bool = True) -> torch.Tensor:
    """``mmcv.ops.roi_align``: ``rois`` (K, 5) as (batch index, x1, y1, x2, y2) in input pixels times
    ``1 / spatial_scale``; bilinear samples averaged per output bin (``sampling_ratio`` per bin side,
    0: adaptive, ceil(roi size / output size)). ``aligned=True`` takes pixel centres at +0.5 (the
    boxes are shifted by -0.5 before sampling); ``aligned=False`` is the legacy convention with RoI
    sizes of at least 1. ``torchvision.ops.roi_align`` shares both conventions.
    """
    if pool_mode != 'avg':
        raise NotImplementedError(f"mmcv.ops.roi_align: pool_mode='{pool_mode}' needs full mmcv's compiled "
                                  "ops; mmcv-lite through gfnet_seg provides pool_mode='avg'")
    return torchvision.ops.roi_align(input, rois.to(input.dtype), _pair(output_size), float(spatial_scale),
                                     int(sampling_ratio), bool(aligned))


class RoIAlign(nn.Module):
    """``mmcv.ops.RoIAlign`` (``use_torchvision`` is accepted; both paths are torchvision's)."""

    def __init__(self, output_size, spatial_scale: float = 1.0, sampling_ratio: int = 0, pool_mode: str = 'avg',
                 aligned: bool = True, use_torchvision: bool = False):
        super().__init__()
        if pool_mode != 'avg':
            roi_align(torch.zeros(1, 1, 1, 1), torch.zeros(0, 5), 1, pool_mode=pool_mode)
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.pool_mode = pool_mode
        self.aligned = aligned
        self.use_torchvision = use_torchvision

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.pool_mode,
                         self.aligned)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, pool_mode={self.pool_mode}, aligned={self.aligned}')


def _bin_masks(start: torch.Tensor, size: torch.Tensor, bins: int, limit: int) -> torch.Tensor:
    """(bins, limit) booleans: pixel p lies in bin i, [floor(start + i s), ceil(start + (i + 1) s))
    clipped to [0, limit), s = size / bins (mmcv's RoIPool kernel)."""
    i = torch.arange(bins, dtype=start.dtype, device=start.device)
    low = torch.floor(start + i * size / bins).clamp(0, limit)
    high = torch.ceil(start + (i + 1) * size / bins).clamp(0, limit)
    pixels = torch.arange(limit, dtype=start.dtype, device=start.device)
    return (pixels >= low[:, None]) & (pixels < high[:, None])


def roi_pool(input: torch.Tensor, rois: torch.Tensor, output_size, spatial_scale: float = 1.0) -> torch.Tensor:
    """``mmcv.ops.roi_pool``: the maximum over each of the output's bins of a RoI (Fast R-CNN).

    mmcv's kernel, which does not round: a RoI spans ``x1 * scale`` to ``(x2 + 1) * scale`` (and y
    likewise); bin i covers pixels ``floor(start + i * bin)`` to ``ceil(start + (i + 1) * bin)``,
    clipped to the map; an empty bin, or a RoI of size <= 0, gives 0. (``torchvision.ops.roi_pool``
    rounds the RoI to whole pixels, which differs at the strides of a feature pyramid.) One RoI at a
    time: RoIPool serves legacy detectors; mmdet's R-CNNs pool with RoIAlign.
    """
    height, width = _pair(output_size)
    rois = rois.to(input.dtype)
    output = input.new_zeros(rois.size(0), input.size(1), height, width)
    lowest = torch.finfo(input.dtype).min
    for k, (batch, x1, y1, x2, y2) in enumerate(rois):
        start_x, start_y = x1 * spatial_scale, y1 * spatial_scale
        size_x, size_y = (x2 + 1) * spatial_scale - start_x, (y2 + 1) * spatial_scale - start_y
        if size_x <= 0 or size_y <= 0:
            continue
        rows = _bin_masks(start_y, size_y, height, input.size(2))  # (height, H)
        cols = _bin_masks(start_x, size_x, width, input.size(3))  # (width, W)
        feats = input[int(batch)]
        pooled = feats[:, :, None, :].masked_fill(~cols, lowest).amax(-1)  # (C, H, width)
        pooled = pooled[:, None].masked_fill(~rows[:, :, None], lowest).amax(2)  # (C, height, width)
        empty = ~(rows.any(1)[:, None] & cols.any(1)[None, :])
        output[k] = pooled.masked_fill(empty, 0)
    return output


class RoIPool(nn.Module):
    """``mmcv.ops.RoIPool``."""

    def __init__(self, output_size, spatial_scale: float = 1.0):
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f'output_size={self.output_size}, spatial_scale={self.spatial_scale}'


# ---------------------------------------------------------------------------------------------
# Focal loss
def sigmoid_focal_loss(input: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: float = 0.25,
                       weight: Optional[torch.Tensor] = None, reduction: str = 'mean') -> torch.Tensor:
    """``mmcv.ops.sigmoid_focal_loss``: ``input`` (N, C) logits, ``target`` (N,) class indices.

    A target equal to C means background (no positive class). ``weight`` is indexed by each
    row's target and scales the whole row, as in mmcv's kernel; 'mean' divides the summed loss
    by N, as mmcv does.
    """
    num_classes = input.size(1)
    one_hot = F.one_hot(target.clamp(max=num_classes), num_classes + 1)[:, :num_classes].to(input.dtype)
    prob = input.sigmoid()
    # log(p) and log(1 - p) from logits, stable for large |input|.
    log_p, log_not_p = F.logsigmoid(input), F.logsigmoid(-input)
    loss = -(alpha * one_hot * (1 - prob).pow(gamma) * log_p
             + (1 - alpha) * (1 - one_hot) * prob.pow(gamma) * log_not_p)
    if weight is not None:
        loss = loss * weight[target].unsqueeze(1)
    if reduction == 'mean':
        return loss.sum() / input.size(0)
    if reduction == 'sum':
        return loss.sum()
    return loss


class SigmoidFocalLoss(nn.Module):
    """``mmcv.ops.SigmoidFocalLoss``."""

    def __init__(self, gamma: float, alpha: float, weight: Optional[torch.Tensor] = None, reduction: str = 'mean'):
        super().__init__()
        self.gamma, self.alpha, self.reduction = float(gamma), float(alpha), reduction
        self.register_buffer('weight', weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sigmoid_focal_loss(input, target, self.gamma, self.alpha, self.weight, self.reduction)


# ---------------------------------------------------------------------------------------------
# Build information (mmdet's and mmengine's environment reports call these)
def get_compiler_version() -> str:
    return 'none: mmcv-lite has no compiled ops (pure-PyTorch mmcv.ops from gfnet_seg)'


def get_compiling_cuda_version() -> str:
    return 'not compiled'


# ---------------------------------------------------------------------------------------------
# Everything else: stand-ins that import and raise when used
PROVIDED = tuple(name for names in IMPLEMENTED.values() for name in names)


def _missing_message(name: str) -> str:
    return (f"mmcv.ops.{name} needs full mmcv's compiled ops, which mmcv-lite does not ship "
            f"(gfnet_seg provides {', '.join(PROVIDED)} and mmcv-lite's uncompiled ops)")


def _missing(name: str):
    def missing_op(*args, **kwargs):
        raise ModuleNotFoundError(_missing_message(name), name='mmcv._ext')
    missing_op.__name__ = missing_op.__qualname__ = name
    return missing_op


@lru_cache(maxsize=None)
def _stand_in(name: str, is_class: bool):
    if not is_class:
        return _missing(name)

    def __init__(self, *args, **kwargs):
        raise ModuleNotFoundError(_missing_message(name), name='mmcv._ext')
    return type(name, (nn.Module,), {'__init__': __init__, '__module__': __name__,
                                     '__doc__': f'Stand-in: {_missing_message(name)}.'})


@lru_cache(maxsize=None)
def source_names(submodule: str) -> Dict[str, bool]:
    """Top-level names defined in mmcv-lite's ``ops/<submodule>.py``: name -> is a class."""
    path = osp.join(MMCV_OPS_SOURCES, f'{submodule}.py')
    if not osp.isfile(path):
        return {}
    names = {}
    for node in ast.parse(open(path, encoding='utf-8').read()).body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = True
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = False
        elif isinstance(node, ast.Assign):
            names.update((t.id, False) for t in node.targets if isinstance(t, ast.Name))
    return {k: v for k, v in names.items() if not k.startswith('_')}


@lru_cache(maxsize=None)
def needs_compiled_ops(submodule: str) -> bool:
    """True when mmcv-lite's ``ops/<submodule>.py`` loads the compiled extension (or is missing)."""
    path = osp.join(MMCV_OPS_SOURCES, f'{submodule}.py')
    return not osp.isfile(path) or 'ext_loader' in open(path, encoding='utf-8').read()


@lru_cache(maxsize=None)
def exported_names() -> Dict[str, str]:
    """What mmcv's ``ops/__init__.py`` exports: name -> the submodule it comes from."""
    tree = ast.parse(open(osp.join(MMCV_OPS_SOURCES, '__init__.py'), encoding='utf-8').read())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names.update((alias.asname or alias.name, node.module) for alias in node.names)
    return names


def resolve(submodule: str, name: str):
    """The object ``mmcv.ops.<submodule>.<name>`` stands for: ours, or a stand-in; AttributeError if
    mmcv defines no such name there."""
    if name in IMPLEMENTED.get(submodule, ()):
        return globals()[name]
    defined = source_names(submodule)
    if name not in defined:
        raise AttributeError(f"module 'mmcv.ops.{submodule}' has no attribute '{name}'")
    return _stand_in(name, defined[name])


def __getattr__(name: str):
    submodule = exported_names().get(name)
    if submodule is None or name.startswith('__'):
        raise AttributeError(f"module 'mmcv.ops' has no attribute '{name}'")
    if needs_compiled_ops(submodule):
        return resolve(submodule, name)
    # mmcv-lite's own uncompiled module (point_sample, merge_cells, ...), through the import hook.
    return getattr(importlib.import_module(f'{__name__}.{submodule}'), name)


def __dir__():
    return sorted(set(globals()) | set(exported_names()))


__all__ = sorted(exported_names())


class _OpsPackage(types.ModuleType):
    """Importing ``mmcv.ops.nms`` binds the submodule as the package's ``nms``; where mmcv exports a
    function of its submodule's name (``nms``, ``roi_align``, ``point_sample``), the function stays,
    as in full mmcv, whose ``__init__`` rebinds them."""

    def __setattr__(self, name, value):
        if (isinstance(value, types.ModuleType) and value.__name__ == f'{self.__name__}.{name}'
                and exported_names().get(name) == name):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _OpsPackage
