"""Global Filter Networks: GFNet (isotropic) and GFNet-H (pyramid), registered in timm.

"Global Filter Networks for Image Classification", Rao et al., NeurIPS 2021.
State-dict keys are those of the official release, so its checkpoints load with ``strict=True``.
Tokens travel as ``(B, H, W, C)`` maps (``output_fmt = 'NHWC'``), so every shape that depends on
the input size (filters, position embedding) is derived from the input at run time; see
``global_filter.py``. The models implement timm's full model API: ``forward_features`` /
``forward_head``, ``forward_intermediates`` / ``prune_intermediate_layers``, ``features_only``,
``set_grad_checkpointing``, and they script, fx-trace, compile and export.

Depends on torch and timm only (the classification path never imports mmseg).
"""
import logging
import os
from functools import partial
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, calculate_drop_path_rates, register_notrace_function, to_2tuple, trunc_normal_
from timm.models import build_model_with_cfg, checkpoint, checkpoint_seq, generate_default_cfgs, register_model
from timm.models import resolve_pretrained_cfg
from timm.models._features import FeatureGetterNet, feature_take_indices

from .checkpoint import adapt_state_dict, fit_state_dict, read_checkpoint, unwrap_state_dict
from .global_filter import SIZE_CACHE, GlobalFilter, cached_for_size, filter_size, is_tracing, resize_pos_embed
from .token_mix import channel_mix_in_chunks, fused_channel_mix

__all__ = ['GFNet', 'GFNetPyramid', 'ARCH_SETTINGS', 'arch_settings', 'create_gfnet']

# The published architectures (GFNet paper, Table 1 and the official main.py).
ARCH_SETTINGS = {
    'ti': dict(embed_dim=256, depth=12, drop_path_rate=0.0),
    'xs': dict(embed_dim=384, depth=12, drop_path_rate=0.0),
    's': dict(embed_dim=384, depth=19, drop_path_rate=0.15),
    'b': dict(embed_dim=512, depth=19, drop_path_rate=0.25),
    'h-ti': dict(embed_dims=(64, 128, 256, 512), depths=(3, 3, 10, 3), drop_path_rate=0.1, layer_scale_init=1e-3),
    'h-s': dict(embed_dims=(96, 192, 384, 768), depths=(3, 3, 10, 3), drop_path_rate=0.2, layer_scale_init=1e-5),
    'h-b': dict(embed_dims=(96, 192, 384, 768), depths=(3, 3, 27, 3), drop_path_rate=0.4, layer_scale_init=1e-6),
}
OUTPUT_FORMATS = ('NCHW', 'NHWC')


def arch_settings(arch: str) -> dict:
    """Settings of a published architecture ('ti', 'h-ti', 'gfnet_h_ti', 'gfnet-h-ti' all work)."""
    key = arch.lower().replace('_', '-')
    key = key[len('gfnet-'):] if key.startswith('gfnet-') else key
    if key not in ARCH_SETTINGS:
        raise ValueError(f"unknown GFNet arch '{arch}'; valid: {', '.join(ARCH_SETTINGS)} "
                         f"(or timm names {', '.join(MODEL_NAMES)})")
    return dict(ARCH_SETTINGS[key])


@torch.jit.unused
@register_notrace_function
def check_input(x: torch.Tensor, in_chans: int, min_size: int) -> None:
    """Reject inputs the network cannot process, with the reason, before any layer runs."""
    if x.dim() != 4 or x.shape[1] != in_chans:
        raise ValueError(f'expected images of shape (B, {in_chans}, H, W), got {tuple(x.shape)}')
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f'input {x.shape[-2]}x{x.shape[-1]} is smaller than the network\'s total '
                         f'stride {min_size}; resize or pad it to at least {min_size}x{min_size}')


@register_notrace_function
def fitted_pos_embed(pos_embed: torch.Tensor, pos_grid: Tuple[int, int], height: int, width: int) -> torch.Tensor:
    """The position embedding ``(1, H, W, C)`` for an H x W token grid, resized from ``pos_grid``
    when it differs (always while tracing, so that the graph holds for every input size)."""
    if (not torch.jit.is_scripting() and is_tracing()) or height != pos_grid[0] or width != pos_grid[1]:
        pos_embed = resize_pos_embed(pos_embed, (height, width), pos_grid)
    return pos_embed.reshape(1, height, width, pos_embed.shape[-1])


@register_notrace_function
def add_pos_embed(x: torch.Tensor, pos_embed: torch.Tensor, pos_grid: Tuple[int, int]) -> torch.Tensor:
    """``x + pos_embed`` on the token grid of ``x`` ``(B, H, W, C)``."""
    return x + fitted_pos_embed(pos_embed, pos_grid, x.shape[1], x.shape[2])


# torch.fx keeps these as single nodes in every trace (timm's tracer reads the registry above).
torch.fx.wrap('check_input')
torch.fx.wrap('add_pos_embed')


def tokens_to_format(x: torch.Tensor, output_fmt: str) -> torch.Tensor:
    """A ``(B, H, W, C)`` token map in ``output_fmt`` ('NHWC' as is, 'NCHW' permuted, contiguous)."""
    return x.permute(0, 3, 1, 2).contiguous() if output_fmt == 'NCHW' else x


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided conv: (B, C, H, W) image -> (B, H/p, W/p, D) tokens,
    contiguous (every later layer, FFT included, is fastest on contiguous channels-last tokens)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, device=None, dtype=None):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size,
                              device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1).contiguous()


class Downsample(nn.Module):
    """Joins pyramid stages: 2x2 stride-2 conv on a (B, H, W, C) token map."""

    def __init__(self, dim_in: int, dim_out: int, device=None, dtype=None):
        super().__init__()
        self.proj = nn.Conv2d(dim_in, dim_out, kernel_size=2, stride=2, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).contiguous()


def sample_scale(drop_path: nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """The per-sample factor ``(B, 1, ..., 1)`` that ``drop_path`` is about to apply to a branch of
    ``x``'s shape (0 for a dropped sample), drawn as timm's ``drop_path`` draws it; None when it
    applies none (no stochastic depth, or eval mode)."""
    if not isinstance(drop_path, DropPath) or not drop_path.training or drop_path.drop_prob == 0.:
        return None
    keep_prob = 1 - drop_path.drop_prob
    scale = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep_prob)
    if keep_prob > 0. and drop_path.scale_by_keep:
        scale.div_(keep_prob)
    return scale


class Block(nn.Module):
    """``x + drop_path(gamma * mlp(norm2(filter(norm1(x)))))``; no residual around the filter,
    as in the paper. ``gamma`` (layer scale) exists only when ``layer_scale_init`` is given.

    Eager execution picks a faster path for the token-wise half (``token_mix.py``): in training a
    fused function that keeps fewer activations, in CPU inference chunks of tokens that stay in
    cache. CPU training skips the branch for samples that stochastic depth drops. TorchScript,
    torch.fx, torch.compile and torch.export see the plain modules.
    """

    def __init__(self, dim: int, grid: Tuple[int, int], mlp_ratio: float = 4., drop: float = 0.,
                 drop_path: float = 0., layer_scale_init: Optional[float] = None, norm_layer=nn.LayerNorm,
                 device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.norm1 = norm_layer(dim, **dd)
        self.filter = GlobalFilter(dim, *filter_size(grid), **dd)
        self.norm2 = norm_layer(dim, **dd)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop, **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.gamma = None if layer_scale_init is None else nn.Parameter(
            layer_scale_init * torch.ones(dim, **dd))

    def channel_mix(self, tokens: torch.Tensor) -> torch.Tensor:
        """``gamma * mlp(norm2(tokens))``: token-wise, so it runs on any subset of the tokens."""
        branch = self.mlp(self.norm2(tokens))
        return branch if self.gamma is None else self.gamma * branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return x + self.drop_path(self.channel_mix(self.filter(self.norm1(x))))
        return self._forward_eager(x)

    @torch.jit.unused
    def _forward_eager(self, x: torch.Tensor) -> torch.Tensor:
        if is_tracing():
            return x + self.drop_path(self.channel_mix(self.filter(self.norm1(x))))
        if torch.is_grad_enabled():
            return self._forward_training(x)
        mixed = self.filter(self.norm1(x))
        if x.is_cpu:
            return channel_mix_in_chunks(self, x, mixed)
        return x + self.drop_path(self.channel_mix(mixed))

    @torch.jit.unused
    def _forward_training(self, x: torch.Tensor) -> torch.Tensor:
        """``x + drop_path(branch(x))`` with the branch computed, on CPU, only for the samples that
        stochastic depth keeps (the saving the stochastic-depth paper describes). The per-sample
        scale is drawn before the branch with the same draws as timm's ``drop_path``, so outputs and
        gradients are the same. The kept samples' common factor and the residual add go into the
        fused token-wise function. When every sample is dropped the branch still runs, so that its
        parameters get zero gradients, not none (optimizers, DDP). CUDA computes every sample:
        choosing them would wait for the GPU."""
        scale = sample_scale(self.drop_path, x)
        if scale is None:
            return self._branch(x, residual=x)
        kept = scale.flatten().nonzero().flatten() if x.is_cpu else None
        if kept is None or kept.numel() == 0:
            return x + self._branch(x) * scale
        factor = float(scale.flatten()[kept[0]])  # the kept samples' common factor
        if kept.numel() == x.shape[0]:
            return self._branch(x, residual=x, scale=factor)
        branch = self._branch(x[kept], scale=factor)
        dtype = torch.promote_types(x.dtype, branch.dtype)
        return x.to(dtype).index_add(0, kept, branch.to(dtype))

    @torch.jit.unused
    def _branch(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None, scale: float = 1.) -> torch.Tensor:
        """``residual + scale * branch(x)`` (no residual if None)."""
        return fused_channel_mix(self, self.filter(self.norm1(x)), residual, scale)


class _GFNetBase(nn.Module):
    """What both families share: the learned position embedding on the first token grid, weight
    init, the classifier head (final LayerNorm, token mean, Linear) and timm's model API."""
    output_fmt = 'NHWC'
    __jit_ignored_attributes__ = [SIZE_CACHE]

    def _init_pos_embed(self, grid: Tuple[int, int], dim: int, device=None, dtype=None) -> None:
        self.pos_grid = (int(grid[0]), int(grid[1]))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], dim, device=device, dtype=dtype))
        trunc_normal_(self.pos_embed, std=.02)

    def _add_pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            return self.pos_drop(add_pos_embed(x, self.pos_embed, self.pos_grid))
        return self.pos_drop(self._add_pos_embed_eager(x))

    @torch.jit.unused
    def _add_pos_embed_eager(self, x: torch.Tensor) -> torch.Tensor:
        if is_tracing():
            return add_pos_embed(x, self.pos_embed, self.pos_grid)
        grid = (x.shape[1], x.shape[2])
        return x + cached_for_size(self, self.pos_embed, grid,
                                   lambda: fitted_pos_embed(self.pos_embed, self.pos_grid, *grid))

    def _init_head(self, num_features: int, num_classes: int, drop_rate: float, global_pool: str, norm_layer,
                   device=None, dtype=None) -> None:
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = num_features
        self.global_pool = self._check_pool(global_pool)
        self.grad_checkpointing = False
        self.norm = norm_layer(num_features, device=device, dtype=dtype)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = self._new_head(num_classes, device, dtype)

    @staticmethod
    def _check_pool(global_pool: str) -> str:
        if global_pool not in ('avg', ''):
            raise ValueError(f"GFNet pools by token mean: global_pool must be 'avg' or '' (none), got '{global_pool}'")
        return global_pool

    def _new_head(self, num_classes: int, device=None, dtype=None) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        return nn.Linear(self.head_hidden_size, num_classes, device=device, dtype=dtype)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {'pos_embed'}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise learning-rate decay: the stem, then each block (or stage)."""
        return dict(stem=r'^pos_embed|^patch_embed', blocks=self._block_groups(coarse))

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block in the backward pass instead of keeping its activations."""
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """A new ``num_classes`` head (0: none, pooled features); ``global_pool=''`` returns the map."""
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = self._check_pool(global_pool)
        self.head = self._new_head(num_classes, self.pos_embed.device, self.pos_embed.dtype).train(self.training)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == 'avg':
            x = x.mean(dim=(1, 2))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class GFNet(_GFNetBase):
    """Isotropic GFNet: 16x16 patches, ``depth`` global filter blocks at one resolution."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=384, depth=12,
                 mlp_ratio=4., drop_rate=0., drop_path_rate=0., norm_layer=None, global_pool='avg',
                 device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        img_size = to_2tuple(img_size)
        grid = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.in_chans, self.patch_size = in_chans, patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, **dd)
        self._init_pos_embed(grid, embed_dim, **dd)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = calculate_drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.Sequential(*[
            Block(embed_dim, grid, mlp_ratio, drop_rate, dpr[i], norm_layer=norm_layer, **dd) for i in range(depth)])
        self.feature_info = [dict(num_chs=embed_dim, reduction=patch_size, module=f'blocks.{i}')
                             for i in range(depth)]
        self._init_head(embed_dim, num_classes, drop_rate, global_pool, norm_layer, **dd)
        self.apply(self._init_weights)

    def _block_groups(self, coarse: bool):
        return [(r'^blocks\.(\d+)', None), (r'^norm', (99999,))]

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():
            check_input(x, self.in_chans, self.patch_size)
        return self._add_pos_embed(self.patch_embed(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._embed(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x)
        else:
            x = self.blocks(x)
        return self.norm(x)

    def forward_intermediates(self, x: torch.Tensor, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False,
                              ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """The outputs of chosen blocks (``indices``: the last n if an int, all if None), through the
        final norm if ``norm``, as ``output_fmt`` ('NCHW' or 'NHWC') maps at stride 16; and the
        output of ``forward_features`` unless ``intermediates_only``."""
        assert output_fmt in OUTPUT_FORMATS, f'output_fmt must be one of {OUTPUT_FORMATS}'
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        x = self._embed(x)
        if torch.jit.is_scripting() or not stop_early:
            blocks = self.blocks
        else:
            blocks = self.blocks[:max_index + 1]
        intermediates = []
        for i, block in enumerate(blocks):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(block, x)
            else:
                x = block(x)
            if i in take_indices:
                intermediates.append(tokens_to_format(self.norm(x) if norm else x, output_fmt))
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the blocks after the last of ``indices`` (and the norm / head if asked)."""
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[:max_index + 1]
        self.feature_info = self.feature_info[:max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, '')
        return take_indices


class GFNetPyramid(_GFNetBase):
    """GFNet-H: four stages at strides 4/8/16/32 with layer scale, joined by 2x2 stride-2 convs."""

    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000,
                 embed_dims=(64, 128, 256, 512), depths=(3, 3, 10, 3), mlp_ratio=4., drop_rate=0.,
                 drop_path_rate=0., layer_scale_init=1e-3, norm_layer=None, global_pool='avg',
                 device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        img_size = to_2tuple(img_size)
        grid = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.in_chans = in_chans
        self.embed_dims = tuple(embed_dims)
        self.strides = tuple(patch_size * 2 ** i for i in range(len(depths)))
        self.patch_embed = nn.ModuleList(
            [PatchEmbed(patch_size, in_chans, embed_dims[0], **dd)]
            + [Downsample(embed_dims[i], embed_dims[i + 1], **dd) for i in range(len(depths) - 1)])
        self._init_pos_embed(grid, embed_dims[0], **dd)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = iter(calculate_drop_path_rates(drop_path_rate, sum(depths)))
        self.blocks = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(embed_dims, depths)):
            stage_grid = (grid[0] // 2 ** i, grid[1] // 2 ** i)
            self.blocks.append(nn.Sequential(*[
                Block(dim, stage_grid, mlp_ratio, drop_rate, next(dpr), layer_scale_init, norm_layer, **dd)
                for _ in range(depth)]))
        self.feature_info = [dict(num_chs=dim, reduction=stride, module=f'blocks.{i}')
                             for i, (dim, stride) in enumerate(zip(self.embed_dims, self.strides))]
        self._init_head(embed_dims[-1], num_classes, drop_rate, global_pool, norm_layer, **dd)
        self.apply(self._init_weights)

    def _block_groups(self, coarse: bool):
        if coarse:
            return [(r'^blocks\.(\d+)', None), (r'^norm', (99999,))]
        return [(r'^patch_embed\.(\d+)', (0,)), (r'^blocks\.(\d+)\.(\d+)', None), (r'^norm', (99999,))]

    def _stage_outputs(self, x: torch.Tensor, num_stages: Optional[int] = None) -> List[torch.Tensor]:
        """The (B, H, W, C) outputs of the first ``num_stages`` stages (all if None)."""
        if not torch.jit.is_scripting():
            check_input(x, self.in_chans, self.strides[-1] if num_stages is None else self.strides[num_stages - 1])
        outs: List[torch.Tensor] = []
        for i, (embed, stage) in enumerate(zip(self.patch_embed, self.blocks)):
            if num_stages is None or i < num_stages:  # TorchScript unrolls this loop: no break
                x = embed(x)
                if i == 0:
                    x = self._add_pos_embed(x)
                if self.grad_checkpointing and not torch.jit.is_scripting():
                    x = checkpoint_seq(stage, x)
                else:
                    x = stage(x)
                outs.append(x)
        return outs

    def forward_intermediates(self, x: torch.Tensor, indices: Optional[Union[int, List[int]]] = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False,
                              ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """The outputs of chosen stages (``indices``: the last n if an int, all if None; strides 4,
        8, 16, 32) as ``output_fmt`` ('NCHW' or 'NHWC') maps, and the output of ``forward_features``
        unless ``intermediates_only``. ``norm`` applies the final norm where its width fits: to the
        last stage."""
        assert output_fmt in OUTPUT_FORMATS, f'output_fmt must be one of {OUTPUT_FORMATS}'
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        last_index = len(self.blocks) - 1
        outs = self._stage_outputs(x, max_index + 1 if stop_early else None)
        intermediates = [tokens_to_format(self.norm(outs[i]) if norm and i == last_index else outs[i], output_fmt)
                         for i in take_indices]
        if intermediates_only:
            return intermediates
        return self.norm(outs[-1]), intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the stages after the last of ``indices``. The final norm and the head fit the last
        stage only, so they go too when it does; else as asked."""
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        prune_end = max_index < len(self.blocks) - 1
        self.blocks = self.blocks[:max_index + 1]
        self.patch_embed = self.patch_embed[:max_index + 1]
        self.strides = self.strides[:max_index + 1]
        self.feature_info = self.feature_info[:max_index + 1]
        if prune_end:
            self.num_features = self.head_hidden_size = self.embed_dims[max_index]
        if prune_norm or prune_end:
            self.norm = nn.Identity()
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return take_indices

    def forward_stages(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The (B, H, W, C) output of every stage, strides 4, 8, 16, 32."""
        return self._stage_outputs(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.forward_stages(x)[-1])


class GFNetFeatures(FeatureGetterNet):
    """timm's ``features_only`` wrapper (``forward_intermediates``, NCHW maps), whose
    ``load_state_dict`` also takes whole-model checkpoints, official or ours: the classifier and
    what pruning removed are dropped, filters and the position embedding resized
    (``adapt_state_dict``). So ``create_model(..., features_only=True, checkpoint_path=F)`` and
    mmseg's ``TIMMBackbone(checkpoint_path=F)`` load the ImageNet files."""

    def __init__(self, model: nn.Module, **kwargs):
        super().__init__(model, **kwargs)
        self.register_load_state_dict_pre_hook(GFNetFeatures._adapt_whole_model_checkpoint)

    def _adapt_whole_model_checkpoint(self, state_dict, prefix, *args) -> None:
        own_prefix = prefix + 'model.'
        if any(key.startswith(own_prefix) for key in state_dict):
            return  # saved from a features_only model: nothing to adapt
        whole = {key[len(prefix):]: state_dict.pop(key) for key in list(state_dict) if key.startswith(prefix)}
        adapted, _, _ = adapt_state_dict(unwrap_state_dict(whole), self.model)
        wanted = self.model.state_dict()
        state_dict.update({own_prefix + key: value for key, value in adapted.items() if key in wanted})


def _cfg(file: str, **kwargs) -> dict:
    return {
        'file': file, 'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (14, 14),
        'crop_pct': 0.9, 'interpolation': 'bicubic', 'fixed_input_size': False,
        'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'patch_embed.proj', 'classifier': 'head', 'license': 'mit',
        'paper_ids': 'arXiv:2107.00645', 'origin_url': 'https://github.com/raoyongming/GFNet', **kwargs}


# Nothing is downloaded unless asked: ``pretrained=True`` reads the official file from
# ``checkpoints/``. Other weights: ``pretrained_cfg_overlay=dict(file=PATH)`` (.pth or .safetensors),
# ``dict(url=URL)``, or the model names ``'local-dir:DIR'`` / ``'hf-hub:ID'`` (timm's Hugging Face
# layout, as ``timm.models.save_for_hf`` or ``tools/convert_checkpoint.py --hf`` write it).
MODEL_NAMES = ('gfnet_ti', 'gfnet_xs', 'gfnet_s', 'gfnet_b', 'gfnet_h_ti', 'gfnet_h_s', 'gfnet_h_b')
default_cfgs = generate_default_cfgs({
    f'{name}.in1k': _cfg(f"checkpoints/{name.replace('_', '-')}.pth",
                         **(dict(first_conv='patch_embed.0.proj', pool_size=(7, 7)) if name.startswith('gfnet_h')
                            else {}))
    for name in MODEL_NAMES})

_logger = logging.getLogger(__name__)
# The stems' weights: timm adapts them itself when ``in_chans`` differs from the checkpoint's.
_FIRST_CONV_WEIGHTS = ('patch_embed.proj.weight', 'patch_embed.0.proj.weight')
# Arguments of the entry points that steer the build, not the architecture: left out of the
# reconstruction arguments that ``save_for_hf`` writes into config.json.
_BUILD_ARGS = frozenset({'pretrained_cfg', 'pretrained_cfg_overlay', 'pretrained_strict', 'pretrained_model_args',
                         'cache_dir', 'features_only', 'out_indices', 'feature_cls', 'feature_cfg',
                         'device', 'dtype'})


def checkpoint_filter_fn(state_dict: dict, model: nn.Module) -> dict:
    """timm's ``pretrained_filter_fn`` for every weight source (file, URL, ``hf-hub:``,
    ``local-dir:``): GFNet weights in any layout (official, ``tools/train_cls.py``, mmengine, a bare
    state dict) fitted to ``model`` by ``fit_state_dict``, as ``load_checkpoint`` fits them: filters
    and position embedding resized to its grid, a head of another shape dropped, keys it lacks left
    out. timm then drops the head when ``num_classes`` differs from the weights' and adapts the
    first conv to ``in_chans``."""
    fitted, report = fit_state_dict(state_dict, model, allow_mismatch=_FIRST_CONV_WEIGHTS)
    _logger.info(f'{type(model).__name__} pretrained weights: {report.summary()}')
    return {key: fitted[key] for key in report.loaded}


def _weights_meta(state_dict: dict, cfg) -> dict:
    """The ``num_classes`` and ``input_size`` of a state dict, for its pretrained cfg."""
    meta = dict(num_classes=state_dict['head.weight'].shape[0] if 'head.weight' in state_dict else 0)
    for key in _FIRST_CONV_WEIGHTS:
        if key in state_dict and state_dict[key].dim() == 4:
            meta['input_size'] = (state_dict[key].shape[1], *cfg.input_size[1:])
    return meta


def _read_local_weights(variant: str, settings: dict) -> None:
    """Prepare ``settings`` for timm's pretrained loading, which ``build_model_with_cfg`` does.

    A source the user names (``url``, ``hf_hub_id``) replaces the default local file. A local file
    (the default or ``file=PATH``) is read here with ``read_checkpoint`` (safe unpickling,
    safetensors by extension or content, clear errors, ``model`` before ``model_ema`` as
    ``--finetune``) and handed to timm as its in-memory ``state_dict`` source, with the
    ``num_classes`` and channels it holds: so timm keeps a head that fits the model (a fine-tuned
    file with ``num_classes=N``) and drops one that does not. The model itself is built as without
    the file: the registry's 1000 classes and 3 channels unless asked otherwise.
    """
    overlay = dict(settings.get('pretrained_cfg_overlay') or {})
    if any(overlay.get(key) for key in ('url', 'hf_hub_id')) and 'file' not in overlay:
        overlay['file'] = None
    cfg = resolve_pretrained_cfg(variant, settings.get('pretrained_cfg'), overlay)
    path = cfg.file if cfg.source not in ('hf-hub', 'local-dir') and cfg.state_dict is None else None
    if path:
        if not os.path.isfile(path):
            default = resolve_pretrained_cfg(variant).file
            if path != default:
                raise FileNotFoundError(f'{variant}: pretrained weights file not found: {path}')
            raise FileNotFoundError(
                f'{variant}: pretrained weights are read from a local file and never downloaded unless '
                f"you name a URL or hub id. Get the official '{os.path.basename(path)}' from "
                f'{cfg.origin_url} and put it at {path}, or pass pretrained_cfg_overlay=dict(file=PATH) '
                "(.pth or .safetensors), or load 'local-dir:DIR' / 'hf-hub:ID'.")
        state_dict = unwrap_state_dict(read_checkpoint(path))
        settings.setdefault('num_classes', cfg.num_classes)
        settings.setdefault('in_chans', cfg.input_size[0])
        overlay.update(state_dict=state_dict, **_weights_meta(state_dict, cfg))
    settings['pretrained_cfg_overlay'] = overlay


def _create_gfnet(variant: str, pretrained: bool = False, **kwargs) -> nn.Module:
    settings = arch_settings(variant)
    settings.update(kwargs)
    pyramid = 'embed_dims' in settings
    # Features: GFNet-H's four stages; the isotropic models' last three blocks (as timm's ViTs).
    out_indices = settings.pop('out_indices', (0, 1, 2, 3) if pyramid else 3)
    if pretrained:
        _read_local_weights(variant, settings)
    model = build_model_with_cfg(GFNetPyramid if pyramid else GFNet, variant, pretrained=pretrained,
                                 pretrained_filter_fn=checkpoint_filter_fn,
                                 feature_cfg=dict(out_indices=out_indices, feature_cls=GFNetFeatures), **settings)
    for module in (model, getattr(model, 'model', None)):  # the weights read above are loaded: let go
        if isinstance(getattr(module, 'pretrained_cfg', None), dict):
            module.pretrained_cfg.pop('state_dict', None)
    # What save_for_hf writes to config.json to rebuild the model (timm.create_model adds the same).
    model._model_args = dict(getattr(model, '_model_args', {}),
                             **{key: value for key, value in kwargs.items() if key not in _BUILD_ARGS})
    return model


def create_gfnet(arch: str, **kwargs) -> nn.Module:
    """Build a GFNet by arch ('h-ti', 'gfnet_h_ti', ...) with timm's machinery."""
    name = 'gfnet_' + arch.lower().replace('-', '_').removeprefix('gfnet_')
    arch_settings(name)  # a clear error for unknown names
    return _create_gfnet(name, **kwargs)


@register_model
def gfnet_ti(pretrained=False, **kwargs) -> GFNet:
    return _create_gfnet('gfnet_ti', pretrained, **kwargs)


@register_model
def gfnet_xs(pretrained=False, **kwargs) -> GFNet:
    return _create_gfnet('gfnet_xs', pretrained, **kwargs)


@register_model
def gfnet_s(pretrained=False, **kwargs) -> GFNet:
    return _create_gfnet('gfnet_s', pretrained, **kwargs)


@register_model
def gfnet_b(pretrained=False, **kwargs) -> GFNet:
    return _create_gfnet('gfnet_b', pretrained, **kwargs)


@register_model
def gfnet_h_ti(pretrained=False, **kwargs) -> GFNetPyramid:
    return _create_gfnet('gfnet_h_ti', pretrained, **kwargs)


@register_model
def gfnet_h_s(pretrained=False, **kwargs) -> GFNetPyramid:
    return _create_gfnet('gfnet_h_s', pretrained, **kwargs)


@register_model
def gfnet_h_b(pretrained=False, **kwargs) -> GFNetPyramid:
    return _create_gfnet('gfnet_h_b', pretrained, **kwargs)
