"""The token-wise half of a GFNet block, ``gamma * mlp(norm2(tokens))``, in eager execution.

Over the large stride-4 maps this half, not the FFT, moves most of the memory. Two paths replace
the plain modules where they pay (``Block._forward_eager`` picks; traced models see the modules):

* training: ``ChannelMixFunction`` keeps, per token, the block input and the MLP pre-activation
  only (5 of the 11 widths autograd would keep: the LayerNorm output, the GELU output and the
  layer-scale input are recomputed or never needed). GELU and LayerNorm are recomputed in the
  backward pass; no matrix product is.
* CPU inference: chunks of tokens whose hidden activations stay in cache, fc1 and GELU fused by
  oneDNN where the build has it.
"""
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

# CPU inference runs the token-wise half of a block on chunks of tokens whose hidden MLP activations
# hold about this many elements per thread (4 MiB in float32): they stay in cache, where activations
# of the whole map (4x its width) would fill a fresh buffer, page faults included, several times per
# block. Scaled by the thread count, so that every thread keeps a large share of each chunk.
CHUNK_ELEMENTS = 2 ** 20
# oneDNN's fused linear + pointwise op, in torch builds with mkldnn (the x86 and arm64 wheels).
_HAS_LINEAR_POINTWISE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_linear_pointwise')


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
    """oneDNN's linear with a fused GELU serves float32 CPU inference outside autocast."""
    return (_HAS_LINEAR_POINTWISE and tokens.dtype == torch.float32 and not torch.is_autocast_enabled('cpu')
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


class ChannelMixFunction(torch.autograd.Function):
    """``gamma * fc2(gelu(fc1(layer_norm(tokens))))`` saving only ``tokens``, the fc1 output and the
    LayerNorm statistics. The layer-scale gradient comes from ``grad^T gelu(h)``, the product
    that fc2's weight gradient needs anyway, so the MLP output is not kept either."""

    @staticmethod
    def forward(ctx, tokens, norm_weight, norm_bias, eps, fc1_weight, fc1_bias, fc2_weight, fc2_bias, gamma):
        normed, mean, rstd = torch.native_layer_norm(tokens, [tokens.shape[-1]], norm_weight, norm_bias, eps)
        hidden = F.linear(normed, fc1_weight, fc1_bias)
        out = F.linear(F.gelu(hidden), fc2_weight, fc2_bias)
        ctx.save_for_backward(tokens, mean, rstd, hidden, norm_weight, norm_bias, fc1_weight, fc2_weight, fc2_bias,
                              gamma)
        return out if gamma is None else out * gamma

    @staticmethod
    def backward(ctx, grad):
        (tokens, mean, rstd, hidden, norm_weight, norm_bias, fc1_weight, fc2_weight, fc2_bias,
         gamma) = ctx.saved_tensors
        width = tokens.shape[-1]
        grad_flat = grad.reshape(-1, width)
        activation = F.gelu(hidden).reshape(-1, hidden.shape[-1])
        grad_fc2_weight = grad_flat.t() @ activation  # = grad^T a; times gamma below
        grad_fc2_bias = grad_flat.sum(0)
        grad_gamma = None
        if gamma is not None:
            # sum over tokens of grad * (a W2^T + b2)
            grad_gamma = (grad_fc2_weight * fc2_weight).sum(1) + grad_fc2_bias * fc2_bias
            grad_fc2_weight = grad_fc2_weight * gamma[:, None]
            grad_fc2_bias = grad_fc2_bias * gamma
            grad_flat = grad_flat * gamma
        grad_hidden = torch.ops.aten.gelu_backward(grad_flat @ fc2_weight, hidden.reshape(activation.shape))
        normed = ((tokens - mean) * rstd * norm_weight + norm_bias).reshape(-1, width)
        grad_fc1_weight = grad_hidden.t() @ normed
        grad_fc1_bias = grad_hidden.sum(0)
        grad_normed = (grad_hidden @ fc1_weight).reshape(tokens.shape)
        grad_tokens, grad_norm_weight, grad_norm_bias = torch.ops.aten.native_layer_norm_backward(
            grad_normed, tokens, [width], mean, rstd, norm_weight, norm_bias, [True, True, True])
        return (grad_tokens, grad_norm_weight, grad_norm_bias, None, grad_fc1_weight, grad_fc1_bias,
                grad_fc2_weight, grad_fc2_bias, grad_gamma)


def fusable(block: nn.Module, tokens: torch.Tensor) -> bool:
    """The fused function covers LayerNorm + Linear-GELU-Linear with no dropout, on CPU and CUDA
    outside autocast."""
    mlp = block.mlp
    return (isinstance(block.norm2, nn.LayerNorm) and isinstance(mlp.act, nn.GELU) and mlp.act.approximate == 'none'
            and isinstance(mlp.norm, nn.Identity) and not (mlp.drop1.p > 0 or mlp.drop2.p > 0)
            and mlp.fc1.bias is not None and mlp.fc2.bias is not None
            and tokens.device.type in ('cpu', 'cuda') and not torch.is_autocast_enabled(tokens.device.type))


def fused_channel_mix(block: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``block.channel_mix(tokens)`` for training, through ``ChannelMixFunction`` where it applies."""
    if not fusable(block, tokens):
        return block.channel_mix(tokens)
    norm, mlp = block.norm2, block.mlp
    return ChannelMixFunction.apply(tokens, norm.weight, norm.bias, norm.eps, mlp.fc1.weight, mlp.fc1.bias,
                                   mlp.fc2.weight, mlp.fc2.bias, block.gamma)
