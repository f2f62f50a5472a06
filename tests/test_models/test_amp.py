"""Mixed precision: GFNet-H trains and infers under bf16 and fp16 autocast with float32 FFTs."""
import pytest
import torch

import gfnet_seg.models.token_mix as token_mix
from gfnet_seg.models.backbones.gfnet_h import GFNetH
from gfnet_seg.models.gfnet import GFNetPyramid

SMALL = dict(embed_dims=(16, 32, 48, 64), depths=(1, 2, 1, 1), layer_scale_init=1e-3)


def models():
    torch.manual_seed(0)
    yield 'GFNetPyramid', GFNetPyramid(num_classes=5, **SMALL)
    yield 'GFNetH', GFNetH(arch=dict(SMALL), img_size=64)


def linear_output_dtypes(model) -> list:
    """The dtype of every output of the model's Linear layers (the MLPs and the head) as it runs."""
    dtypes = []
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    return dtypes


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_train_step_under_autocast(dtype, fft_inputs):
    for name, model in models():
        model.train()
        linear_dtypes = linear_output_dtypes(model)
        with torch.autocast('cpu', dtype=dtype):
            out = model(torch.randn(2, 3, 64, 96))
        # Autocast is on: every matrix product runs in the low precision (GFNetH's outputs pass
        # through LayerNorms, which autocast keeps in float32, so they cannot show it).
        assert len(linear_dtypes) >= 2 * sum(SMALL['depths']) and set(linear_dtypes) == {dtype}, name
        outs = out if isinstance(out, tuple) else (out,)
        assert all(o.dtype in (dtype, torch.float32) for o in outs), name
        # A fixed random projection of every output: a loss whose gradient no LayerNorm cancels.
        generator = torch.Generator().manual_seed(1)
        sum((o.float() * torch.randn(o.shape, generator=generator)).sum() for o in outs).backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), name
        assert all(g.abs().sum() > 0 for n, g in grads.items() if n.endswith('complex_weight')), name
    transforms = 2 * (1 + 2 + 1 + 1)  # at least a forward and an inverse per block, for each model
    assert len(fft_inputs) >= 2 * transforms and set(fft_inputs) == {torch.float32, torch.complex64}


@pytest.mark.parametrize('dtype', [None, torch.bfloat16, torch.float16])
def test_inference_under_autocast_matches_the_training_path(dtype, fft_inputs, monkeypatch):
    """Inference on CPU runs the token-wise half of each block in chunks (here of 40 tokens per thread); it
    gives what the plain path (autograd on) gives, in the same dtype."""
    monkeypatch.setattr(token_mix, "CHUNK_ELEMENTS", 40 * 4 * 16)
    for name, model in models():
        model.eval()
        images = torch.randn(1, 3, 64, 96)
        with torch.autocast('cpu', dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            plain = model(images)
            with torch.no_grad():
                chunked = model(images)
        for p, c in zip(*(o if isinstance(o, tuple) else (o,) for o in (plain, chunked))):
            assert c.dtype == p.dtype
            torch.testing.assert_close(c, p.detach())
    assert set(fft_inputs) == {torch.float32, torch.complex64}
