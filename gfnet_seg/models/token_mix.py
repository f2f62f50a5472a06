"""The token-wise half of a GFNet block, ``gamma * mlp(norm2(tokens))``, in eager execution.

Over the large stride-4 maps this half, not the FFT, moves most of the memory. Two paths replace
the plain modules where they pay (``Block._forward_eager`` picks; traced models see the modules):

* training: ``ChannelMixFunction`` keeps, per token, its input (the filter's output) and the MLP pre-activation
  only (5 of the 11 widths autograd would keep: the LayerNorm output, the GELU output and the
  layer-scale input are recomputed or never needed). GELU and LayerNorm are recomputed in the
  backward pass; no matrix product is. Layer scale, drop-path factor and the residual add are
  folded into fc2. Both passes walk the tokens in chunks that stay in cache.
* CPU inference: chunks of tokens whose hidden activations stay in cache, fc1 and GELU fused by
  oneDNN where the build has it and the ISA oneDNN runs pays for it (``use_onednn``: chosen once, at
  run time, from the CPU and the caps set in the environment).
"""
import os
from functools import lru_cache, partial
from typing import Optional

import torch
import torch.nn as nn

# CPU inference runs the token-wise half of a block on chunks of tokens whose hidden MLP activations
# hold about this many elements per thread (4 MiB in float32): they stay in cache, where activations
# of the whole map (4x its width) would fill a fresh buffer, page faults included, several times per
# block. Scaled by the thread count, so that every thread keeps a large share of each chunk.
CHUNK_ELEMENTS = 2 ** 20
# Training walks the tokens in smaller chunks (1 MiB of hidden activations per thread): its chunk
# buffers then stay in the L2 cache, and come back from the allocator's heap, where buffers of a
# whole stride-16 map would be fresh pages in every block.
TRAINING_CHUNK_ELEMENTS = 2 ** 18
# oneDNN's fused linear + pointwise op, in torch builds with mkldnn (the x86 and arm64 wheels).
_HAS_LINEAR_POINTWISE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_linear_pointwise')
# The oneDNN ISAs (x86) on which its fused linear + GELU beats MKL's Linear + ATen's GELU in CPU inference,
# measured per ISA on one Sapphire Rapids CPU with oneDNN and MKL capped (tools/analysis/README.md, round
# six). Elsewhere (AVX2 and narrower) the plain modules run. Not x86 (arm64): oneDNN wherever it exists.
ONEDNN_ISAS = ('AVX512', 'AMX')
# Forces the choice: '1' oneDNN wherever the op exists, '0' never; unset or 'auto': by ISA.
ONEDNN_ENV = 'GFNET_CPU_ONEDNN'


def _capped_isa(cap: str) -> Optional[str]:
    """'AVX512', 'AVX2' or 'DEFAULT' for a value of ONEDNN_MAX_CPU_ISA (None: no cap)."""
    cap = cap.strip().upper()
    if not cap or cap == 'ALL' or 'AMX' in cap or cap.startswith(('AVX512', 'AVX10')):
        return None
    return 'AVX2' if cap.startswith('AVX2') else 'DEFAULT'


@lru_cache(maxsize=None)
def onednn_isa() -> str:
    """The vector ISA oneDNN's kernels run here, as oneDNN picks it: the CPU's best ('AMX', 'AVX512',
    'AVX2', 'DEFAULT'; 'OTHER' off x86) capped by ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``).
    Read once: oneDNN reads its cap once too."""
    cpu = torch.backends.cpu.get_cpu_capability().upper()
    if cpu not in ('DEFAULT', 'AVX2', 'AVX512'):  # arm64 (SVE...), s390x, ...
        return 'OTHER'
    # ATen's choice may be capped by ATEN_CPU_CAPABILITY: ask the CPU itself
    has = getattr(torch.cpu, '_is_avx512_supported', None), getattr(torch.cpu, '_is_avx2_supported', None)
    if has[0] is not None:
        cpu = 'AVX512' if has[0]() else 'AVX2' if has[1]() else 'DEFAULT'
        if cpu == 'AVX512' and getattr(torch.cpu, '_is_amx_tile_supported', lambda: False)():
            cpu = 'AMX'
    cap = _capped_isa(os.environ.get('ONEDNN_MAX_CPU_ISA') or os.environ.get('DNNL_MAX_CPU_ISA') or '')
    order = ('DEFAULT', 'AVX2', 'AVX512', 'AMX')
    return cpu if cap is None else order[min(order.index(cpu), order.index(cap))]


@lru_cache(maxsize=None)
def use_onednn() -> bool:
    """Whether CPU inference fuses fc1 and GELU with oneDNN: where the op exists and oneDNN runs one of
    ``ONEDNN_ISAS`` (any ISA off x86), unless ``GFNET_CPU_ONEDNN`` forces it ('1') or rules it out ('0')."""
    forced = os.environ.get(ONEDNN_ENV, 'auto').strip().lower()
    if forced not in ('', 'auto', '0', '1'):
        raise ValueError(f"{ONEDNN_ENV}={forced!r}: use 1, 0 or auto")
    if not _HAS_LINEAR_POINTWISE or forced == '0':
        return False
    return forced == '1' or onednn_isa() in ONEDNN_ISAS + ('OTHER',)


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


def onednn_fusable(block: nn.Module, tokens: torch.Tensor) -> bool:
    """oneDNN's linear with a fused GELU serves float32 CPU inference outside autocast, where it pays
    (``use_onednn``)."""
    return (use_onednn() and tokens.dtype == torch.float32 and not torch.is_autocast_enabled('cpu')
            and fusable(block, tokens))


def channel_mix_onednn(block: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``block.channel_mix(tokens)`` with fc1 and GELU in one oneDNN call (no pass over the 4x-wide
    hidden activations between them): about 3x faster than Linear + GELU on the stride-4 maps."""
    mlp = block.mlp
    hidden = torch.ops.mkldnn._linear_pointwise(block.norm2(tokens), mlp.fc1.weight, mlp.fc1.bias, 'gelu', [], 'none')
    out = torch.ops.mkldnn._linear_pointwise(hidden, mlp.fc2.weight, mlp.fc2.bias, 'none', [], '')
    return out if block.gamma is None else out * block.gamma


def channel_mix_in_chunks(block: nn.Module, x: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """``x + block.channel_mix(mixed)`` for CPU inference, in cache-sized chunks of tokens."""
    chunk_tokens = CHUNK_ELEMENTS * torch.get_num_threads() // block.mlp.fc1.out_features
    if onednn_fusable(block, mixed):
        return add_in_chunks(x, mixed, partial(channel_mix_onednn, block), max(1, chunk_tokens))
    return add_in_chunks(x, mixed, block.channel_mix, max(1, chunk_tokens))


def token_chunks(num_tokens: int, hidden_width: int):
    """Row slices of at most ``TRAINING_CHUNK_ELEMENTS * threads`` hidden activations each, and the
    rows of the largest (for the buffers that serve every chunk)."""
    chunk_tokens = max(1, TRAINING_CHUNK_ELEMENTS * torch.get_num_threads() // hidden_width)
    chunks = [slice(start, start + chunk_tokens) for start in range(0, num_tokens, chunk_tokens)]
    return chunks, min(chunk_tokens, num_tokens)


def output_scale(scale: float, gamma: Optional[torch.Tensor], fc2_bias: torch.Tensor) -> Optional[torch.Tensor]:
    """The per-channel factor on the MLP output, ``scale * gamma``; None when it is 1."""
    if gamma is None:
        return None if scale == 1 else torch.full_like(fc2_bias, scale)
    return gamma if scale == 1 else gamma * scale


def scaled_fc2(fc2_weight: torch.Tensor, fc2_bias: torch.Tensor, out_scale: Optional[torch.Tensor]):
    """fc2's weight and bias with the per-channel output scale folded in."""
    if out_scale is None:
        return fc2_weight, fc2_bias
    return fc2_weight * out_scale[:, None], fc2_bias * out_scale


class ChannelMixFunction(torch.autograd.Function):
    """``residual + scale * gamma * fc2(gelu(fc1(layer_norm(tokens))))`` saving only ``tokens`` and
    the fc1 output (the LayerNorm is recomputed). The layer-scale gradient comes from
    ``grad^T gelu(h)``, the product that fc2's weight gradient needs anyway, so the MLP output is not
    kept either. ``residual`` (the block input; None: no residual) and ``gamma`` (None: no layer
    scale) may be absent; ``scale`` is the drop-path factor of the samples that were kept.

    ``scale * gamma`` is folded into fc2's weight and bias and the residual is fc2's starting sum, so
    neither the layer scale nor the residual add costs a pass over the map, in either direction.
    Both passes walk the tokens in cache-sized chunks (``token_chunks``): the GELU output and the
    gradients of the hidden activations exist one chunk at a time, reused from the allocator's
    heap, where whole-map buffers would be fresh pages (page faults included) in every block.
    """

    @staticmethod
    def forward(ctx, tokens, residual, scale, norm_weight, norm_bias, eps, fc1_weight, fc1_bias, fc2_weight,
                fc2_bias, gamma):
        tokens = tokens.contiguous()
        width, hidden_width = tokens.shape[-1], fc1_weight.shape[0]
        normed, mean, rstd = torch.native_layer_norm(tokens, [width], norm_weight, norm_bias, eps)
        normed = normed.view(-1, width)
        out_scale = output_scale(scale, gamma, fc2_bias)
        fc2_weight_scaled, fc2_bias_scaled = scaled_fc2(fc2_weight, fc2_bias, out_scale)
        hidden = normed.new_empty(normed.shape[0], hidden_width)
        out = normed.new_empty(normed.shape)
        flat_residual = None if residual is None else residual.reshape(-1, width)
        chunks, chunk_rows = token_chunks(normed.shape[0], hidden_width)
        activation = normed.new_empty(chunk_rows, hidden_width)
        for rows in chunks:
            pre_activation = torch.addmm(fc1_bias, normed[rows], fc1_weight.t(), out=hidden[rows])
            act = torch.ops.aten.gelu.out(pre_activation, out=activation[:pre_activation.shape[0]])
            if flat_residual is None:
                torch.addmm(fc2_bias_scaled, act, fc2_weight_scaled.t(), out=out[rows])
            else:
                torch.add(flat_residual[rows], fc2_bias_scaled, out=out[rows]).addmm_(act, fc2_weight_scaled.t())
        ctx.eps, ctx.scale, ctx.has_residual = eps, scale, residual is not None
        ctx.save_for_backward(tokens, hidden, norm_weight, norm_bias, fc1_weight, fc2_weight, fc2_bias, gamma)
        return out.view(tokens.shape)

    @staticmethod
    def backward(ctx, grad):
        tokens, hidden, norm_weight, norm_bias, fc1_weight, fc2_weight, fc2_bias, gamma = ctx.saved_tensors
        width, hidden_width = tokens.shape[-1], hidden.shape[-1]
        normed, mean, rstd = torch.native_layer_norm(tokens, [width], norm_weight, norm_bias, ctx.eps)
        normed = normed.view(-1, width)
        out_scale = output_scale(ctx.scale, gamma, fc2_bias)
        fc2_weight_scaled, _ = scaled_fc2(fc2_weight, fc2_bias, out_scale)
        grad = grad.reshape(-1, width)
        grad_sum = grad.sum(0)
        grad_fc2_product = fc2_weight.new_zeros(fc2_weight.shape)  # grad^T a; scaled below
        grad_fc1_weight = fc1_weight.new_zeros(fc1_weight.shape)
        grad_fc1_bias = fc1_weight.new_zeros(hidden_width)
        grad_normed = torch.empty_like(normed)
        chunks, chunk_rows = token_chunks(normed.shape[0], hidden_width)
        activation, grad_activation = (hidden.new_empty(chunk_rows, hidden_width) for _ in range(2))
        for rows in chunks:
            pre_activation = hidden[rows]
            size = pre_activation.shape[0]
            act = torch.ops.aten.gelu.out(pre_activation, out=activation[:size])
            grad_fc2_product.addmm_(grad[rows].t(), act)
            grad_hidden = torch.mm(grad[rows], fc2_weight_scaled, out=grad_activation[:size])
            torch.ops.aten.gelu_backward.grad_input(grad_hidden, pre_activation, grad_input=grad_hidden)
            grad_fc1_weight.addmm_(grad_hidden.t(), normed[rows])
            grad_fc1_bias += grad_hidden.sum(0)
            torch.mm(grad_hidden, fc1_weight, out=grad_normed[rows])
        grad_gamma = None
        if gamma is not None:
            # sum over tokens of grad * scale * (a W2^T + b2)
            grad_gamma = ((grad_fc2_product * fc2_weight).sum(1) + grad_sum * fc2_bias) * ctx.scale
        grad_fc2_weight = grad_fc2_product if out_scale is None else grad_fc2_product.mul_(out_scale[:, None])
        grad_fc2_bias = grad_sum if out_scale is None else grad_sum * out_scale
        grad_tokens, grad_norm_weight, grad_norm_bias = torch.ops.aten.native_layer_norm_backward(
            grad_normed.view(tokens.shape), tokens, [width], mean, rstd, norm_weight, norm_bias, [True, True, True])
        grad_residual = grad.view(tokens.shape) if ctx.has_residual else None
        return (grad_tokens, grad_residual, None, grad_norm_weight, grad_norm_bias, None, grad_fc1_weight,
                grad_fc1_bias, grad_fc2_weight, grad_fc2_bias, grad_gamma)


def fusable(block: nn.Module, tokens: torch.Tensor) -> bool:
    """The fused function covers LayerNorm + Linear-GELU-Linear with no dropout, on CPU and CUDA
    outside autocast."""
    mlp = block.mlp
    return (isinstance(block.norm2, nn.LayerNorm) and isinstance(mlp.act, nn.GELU) and mlp.act.approximate == 'none'
            and isinstance(mlp.norm, nn.Identity) and not (mlp.drop1.p > 0 or mlp.drop2.p > 0)
            and mlp.fc1.bias is not None and mlp.fc2.bias is not None
            and tokens.device.type in ('cpu', 'cuda') and not torch.is_autocast_enabled(tokens.device.type))


def fused_channel_mix(block: nn.Module, tokens: torch.Tensor, residual: Optional[torch.Tensor] = None,
                      scale: float = 1.) -> torch.Tensor:
    """``residual + scale * block.channel_mix(tokens)`` for training (no residual if None), through
    ``ChannelMixFunction`` where it applies."""
    if not fusable(block, tokens):
        branch = block.channel_mix(tokens)
        branch = branch if scale == 1 else branch * scale
        return branch if residual is None else residual + branch
    norm, mlp = block.norm2, block.mlp
    return ChannelMixFunction.apply(tokens, residual, scale, norm.weight, norm.bias, norm.eps, mlp.fc1.weight,
                                   mlp.fc1.bias, mlp.fc2.weight, mlp.fc2.bias, block.gamma)
