"""Global Filter Networks: GFNet (isotropic) and GFNet-H (pyramid), registered in timm.

"Global Filter Networks for Image Classification", Rao et al., NeurIPS 2021.
State-dict keys are those of the official release, so its checkpoints load with ``strict=True``.
Tokens travel as ``(B, H, W, C)`` maps, so every shape that depends on the input size (filters,
position embedding) is derived from the input at run time; see ``global_filter.py``.

Depends on torch and timm only (the classification path never imports mmseg).
"""
import os
from functools import partial
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, to_2tuple, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from .checkpoint import load_checkpoint
from .global_filter import GlobalFilter, cached_for_size, filter_size, resize_pos_embed

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


def arch_settings(arch: str) -> dict:
    """Settings of a published architecture ('ti', 'h-ti', 'gfnet_h_ti', 'gfnet-h-ti' all work)."""
    key = arch.lower().replace('_', '-')
    key = key[len('gfnet-'):] if key.startswith('gfnet-') else key
    if key not in ARCH_SETTINGS:
        raise ValueError(f"unknown GFNet arch '{arch}'; valid: {', '.join(ARCH_SETTINGS)} "
                         f"(or timm names {', '.join(MODEL_NAMES)})")
    return dict(ARCH_SETTINGS[key])


def check_input(x: torch.Tensor, in_chans: int, min_size: int) -> None:
    """Reject inputs the network cannot process, with the reason, before any layer runs."""
    if x.dim() != 4 or x.shape[1] != in_chans:
        raise ValueError(f'expected images of shape (B, {in_chans}, H, W), got {tuple(x.shape)}')
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f'input {x.shape[-2]}x{x.shape[-1]} is smaller than the network\'s total '
                         f'stride {min_size}; resize or pad it to at least {min_size}x{min_size}')


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided conv: (B, C, H, W) image -> (B, H/p, W/p, D) tokens,
    contiguous (every later layer, FFT included, is fastest on contiguous channels-last tokens)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1).contiguous()


class Downsample(nn.Module):
    """Joins pyramid stages: 2x2 stride-2 conv on a (B, H, W, C) token map."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Conv2d(dim_in, dim_out, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).contiguous()


# CPU inference runs the token-wise half of a block on chunks of tokens whose hidden MLP activations
# hold about this many elements per thread (4 MiB in float32): they stay in cache, where activations
# of the whole map (4x its width) would fill a fresh buffer, page faults included, several times per
# block. Scaled by the thread count, so that every thread keeps a large share of each chunk.
CHUNK_ELEMENTS = 2 ** 20


def add_in_chunks(x: torch.Tensor, tokens: torch.Tensor, token_fn, chunk_tokens: int) -> torch.Tensor:
    """``x + token_fn(tokens)`` for a token-wise ``token_fn``, computed ``chunk_tokens`` tokens at a time."""
    flat_x, flat_tokens = x.reshape(-1, x.shape[-1]), tokens.reshape(-1, tokens.shape[-1])
    out = None
    for start in range(0, flat_x.shape[0], chunk_tokens):
        rows = slice(start, start + chunk_tokens)
        branch = token_fn(flat_tokens[rows])
        if out is None:  # in the dtype ``x + branch`` has under autocast
            out = flat_x.new_empty(flat_x.shape, dtype=torch.promote_types(flat_x.dtype, branch.dtype))
        torch.add(flat_x[rows], branch, out=out[rows])
    return out.view(x.shape)


class Block(nn.Module):
    """``x + drop_path(gamma * mlp(norm2(filter(norm1(x)))))``; no residual around the filter,
    as in the paper. ``gamma`` (layer scale) exists only when ``layer_scale_init`` is given."""

    def __init__(self, dim: int, grid: Tuple[int, int], mlp_ratio: float = 4., drop: float = 0.,
                 drop_path: float = 0., layer_scale_init: float = None, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.filter = GlobalFilter(dim, *filter_size(grid))
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.gamma = None if layer_scale_init is None else nn.Parameter(layer_scale_init * torch.ones(dim))

    def channel_mix(self, tokens: torch.Tensor) -> torch.Tensor:
        """``gamma * mlp(norm2(tokens))``: token-wise, so it runs on any subset of the tokens."""
        branch = self.mlp(self.norm2(tokens))
        return branch if self.gamma is None else self.gamma * branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = self.filter(self.norm1(x))
        if self.training or torch.is_grad_enabled() or not x.is_cpu:
            return x + self.drop_path(self.channel_mix(mixed))
        chunk_tokens = CHUNK_ELEMENTS * torch.get_num_threads() // self.mlp.fc1.out_features
        return add_in_chunks(x, mixed, self.channel_mix, max(1, chunk_tokens))


class _GFNetBase(nn.Module):
    """What both families share: the learned position embedding on the first token grid, weight
    init, and the classifier head (final LayerNorm, token mean, Linear)."""

    def _init_pos_embed(self, grid: Tuple[int, int], dim: int) -> None:
        self.pos_grid = grid
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], dim))
        trunc_normal_(self.pos_embed, std=.02)

    def _add_pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        grid = tuple(x.shape[1:3])

        def compute():
            pos = self.pos_embed
            if grid != tuple(self.pos_grid):
                pos = resize_pos_embed(pos, grid, self.pos_grid)
            return pos.reshape(1, grid[0], grid[1], -1)

        return self.pos_drop(x + cached_for_size(self, self.pos_embed, grid, compute))

    def _init_head(self, num_features: int, num_classes: int, drop_rate: float, norm_layer) -> None:
        self.num_classes = num_classes
        self.num_features = num_features
        self.norm = norm_layer(num_features)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()

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
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str = None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x.mean(dim=(1, 2)))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class GFNet(_GFNetBase):
    """Isotropic GFNet: 16x16 patches, ``depth`` global filter blocks at one resolution."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=384, depth=12,
                 mlp_ratio=4., drop_rate=0., drop_path_rate=0., norm_layer=None, global_pool='avg'):
        super().__init__()
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        img_size = to_2tuple(img_size)
        grid = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.in_chans, self.patch_size = in_chans, patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self._init_pos_embed(grid, embed_dim)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList([
            Block(embed_dim, grid, mlp_ratio, drop_rate, dpr[i], norm_layer=norm_layer) for i in range(depth)])
        self._init_head(embed_dim, num_classes, drop_rate, norm_layer)
        self.apply(self._init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_chans, self.patch_size)
        x = self._add_pos_embed(self.patch_embed(x))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class GFNetPyramid(_GFNetBase):
    """GFNet-H: four stages at strides 4/8/16/32 with layer scale, joined by 2x2 stride-2 convs."""

    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000,
                 embed_dims=(64, 128, 256, 512), depths=(3, 3, 10, 3), mlp_ratio=4., drop_rate=0.,
                 drop_path_rate=0., layer_scale_init=1e-3, norm_layer=None, global_pool='avg'):
        super().__init__()
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        img_size = to_2tuple(img_size)
        grid = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.in_chans = in_chans
        self.embed_dims = tuple(embed_dims)
        self.strides = tuple(patch_size * 2 ** i for i in range(len(depths)))
        self.patch_embed = nn.ModuleList(
            [PatchEmbed(patch_size, in_chans, embed_dims[0])]
            + [Downsample(embed_dims[i], embed_dims[i + 1]) for i in range(len(depths) - 1)])
        self._init_pos_embed(grid, embed_dims[0])
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = iter(torch.linspace(0, drop_path_rate, sum(depths)).tolist())
        self.blocks = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(embed_dims, depths)):
            stage_grid = (grid[0] // 2 ** i, grid[1] // 2 ** i)
            self.blocks.append(nn.Sequential(*[
                Block(dim, stage_grid, mlp_ratio, drop_rate, next(dpr), layer_scale_init, norm_layer)
                for _ in range(depth)]))
        self._init_head(embed_dims[-1], num_classes, drop_rate, norm_layer)
        self.apply(self._init_weights)

    def forward_stages(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The (B, H, W, C) output of every stage, strides 4, 8, 16, 32."""
        check_input(x, self.in_chans, self.strides[-1])
        outs = []
        for i, (embed, stage) in enumerate(zip(self.patch_embed, self.blocks)):
            x = embed(x)
            if i == 0:
                x = self._add_pos_embed(x)
            x = stage(x)
            outs.append(x)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.forward_stages(x)[-1])


def _cfg(file: str, **kwargs) -> dict:
    return {
        'file': file, 'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': None,
        'crop_pct': 0.9, 'interpolation': 'bicubic', 'mean': IMAGENET_DEFAULT_MEAN, 'std': IMAGENET_DEFAULT_STD,
        'first_conv': 'patch_embed.proj', 'classifier': 'head', 'license': 'mit',
        'paper_ids': 'arXiv:2107.00645', 'origin_url': 'https://github.com/raoyongming/GFNet', **kwargs}


# Nothing is downloaded: ``pretrained=True`` reads the official file from ``checkpoints/``
# (or from ``pretrained_cfg_overlay=dict(file=PATH)``).
MODEL_NAMES = ('gfnet_ti', 'gfnet_xs', 'gfnet_s', 'gfnet_b', 'gfnet_h_ti', 'gfnet_h_s', 'gfnet_h_b')
default_cfgs = generate_default_cfgs({
    f'{name}.in1k': _cfg(f"checkpoints/{name.replace('_', '-')}.pth",
                         **({'first_conv': 'patch_embed.0.proj'} if name.startswith('gfnet_h') else {}))
    for name in MODEL_NAMES})


def _create_gfnet(variant: str, pretrained: bool = False, **kwargs) -> nn.Module:
    settings = arch_settings(variant)
    settings.update(kwargs)
    model_cls = GFNetPyramid if 'embed_dims' in settings else GFNet
    model = build_model_with_cfg(model_cls, variant, pretrained=False, **settings)
    if pretrained:
        path = model.pretrained_cfg.get('file')
        if not path or not os.path.isfile(path):
            raise FileNotFoundError(
                f'{variant}: pretrained weights are read from a local file and never downloaded. Get the '
                f"official '{os.path.basename(path or variant + '.pth')}' from "
                f'{model.pretrained_cfg["origin_url"]} and put it at {path}, or pass '
                'pretrained_cfg_overlay=dict(file=PATH).')
        load_checkpoint(model, path)
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
