"""The fast paths of a block against the plain modules they replace: the fused training function
(outputs and gradients), oneDNN's fused linear + GELU in CPU inference, and the custom autograd
function of the global filter (gradcheck in double precision)."""
import pytest
import torch

from gfnet_seg.models import global_filter, token_mix
from gfnet_seg.models.gfnet import Block


@pytest.mark.parametrize('residual, scale', [(False, 1.), (True, 1.), (True, 1.25), (False, 0.8)])
@pytest.mark.parametrize('chunk_elements', [None, 100])
@pytest.mark.parametrize('layer_scale', [None, 1e-3])
def test_fused_channel_mix_matches_autograd(layer_scale, chunk_elements, residual, scale, monkeypatch):
    """``residual + scale * channel_mix(tokens)``: one chunk, and chunks of a few tokens (64 hidden
    units) with, mostly, a shorter last one; with and without the residual and the drop-path factor
    that the fused function folds into fc2."""
    if chunk_elements:
        monkeypatch.setattr(token_mix, 'TRAINING_CHUNK_ELEMENTS', chunk_elements)
        assert len(token_mix.token_chunks(80, 64)[0]) > 10
    torch.manual_seed(0)
    block = Block(16, (8, 8), layer_scale_init=layer_scale).double()
    if layer_scale:
        block.gamma.data.uniform_(0.5, 1.5)  # layer scales far from their init, so gamma's gradient counts
    tokens = torch.randn(2, 8, 5, 16, dtype=torch.float64, requires_grad=True)
    shortcut = torch.randn(2, 8, 5, 16, dtype=torch.float64, requires_grad=True) if residual else None
    weights = torch.randn(2, 8, 5, 16, dtype=torch.float64)
    inputs = ([tokens] + ([shortcut] if residual else []) + [*block.norm2.parameters(), *block.mlp.parameters()]
              + ([block.gamma] if layer_scale else []))
    expected = block.channel_mix(tokens) * scale + (shortcut if residual else 0)
    reference = torch.autograd.grad((expected * weights).sum(), inputs)
    assert token_mix.fusable(block, tokens)
    fused = token_mix.fused_channel_mix(block, tokens, shortcut, scale)
    torch.testing.assert_close(fused, expected)
    for got, want in zip(torch.autograd.grad((fused * weights).sum(), inputs), reference):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_fused_channel_mix_on_no_tokens():
    block = Block(16, (8, 8), layer_scale_init=1e-3)
    tokens = torch.randn(0, 8, 6, 16, requires_grad=True)
    out = token_mix.fused_channel_mix(block, tokens)
    assert out.shape == tokens.shape
    out.sum().backward()
    assert tokens.grad.shape == tokens.shape and block.mlp.fc1.weight.grad.abs().sum() == 0


def test_fused_channel_mix_keeps_fewer_activations():
    """What autograd keeps for the backward pass, measured with saved-tensor hooks."""
    block = Block(32, (8, 8), layer_scale_init=1e-3)
    tokens = torch.randn(2, 16, 16, 32, requires_grad=True)

    def saved_bytes(fn):
        seen = {}
        def pack(tensor):
            seen[tensor.data_ptr()] = tensor.numel() * tensor.element_size()
            return tensor
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        return sum(seen.values())

    plain, fused = saved_bytes(lambda: block.channel_mix(tokens)), saved_bytes(lambda: token_mix.fused_channel_mix(block, tokens))
    assert fused < 0.6 * plain, (fused, plain)


@pytest.mark.skipif(not token_mix._HAS_LINEAR_POINTWISE, reason='this torch build has no oneDNN linear_pointwise')
def test_onednn_inference_path_matches_modules(monkeypatch):
    monkeypatch.setattr(token_mix, 'use_onednn', lambda: True)  # whatever this CPU's ISA picks
    torch.manual_seed(0)
    block = Block(24, (8, 8), layer_scale_init=1e-3).eval()
    block.gamma.data.uniform_(0.5, 1.5)
    tokens = torch.randn(300, 24)
    with torch.no_grad():
        assert token_mix.onednn_fusable(block, tokens)
        torch.testing.assert_close(token_mix.channel_mix_onednn(block, tokens), block.channel_mix(tokens),
                                   rtol=1e-5, atol=1e-5)
        x = torch.randn(1, 10, 30, 24)
        torch.testing.assert_close(token_mix.channel_mix_in_chunks(block, x, x), x + block.channel_mix(x),
                                   rtol=1e-5, atol=1e-5)


@pytest.fixture
def fresh_choice(monkeypatch):
    """``onednn_isa``/``use_onednn`` recomputed under the test's environment and CPU, and again after."""
    for name in ('ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA', token_mix.ONEDNN_ENV):
        monkeypatch.delenv(name, raising=False)
    token_mix.onednn_isa.cache_clear()
    token_mix.use_onednn.cache_clear()
    yield monkeypatch
    token_mix.onednn_isa.cache_clear()
    token_mix.use_onednn.cache_clear()


def fake_cpu(monkeypatch, best):
    monkeypatch.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX512' if best in ('AVX512', 'AMX') else best)
    monkeypatch.setattr(torch.cpu, '_is_avx512_supported', lambda: best in ('AVX512', 'AMX'))
    monkeypatch.setattr(torch.cpu, '_is_avx2_supported', lambda: best != 'DEFAULT')
    monkeypatch.setattr(torch.cpu, '_is_amx_tile_supported', lambda: best == 'AMX')


@pytest.mark.parametrize('cpu, cap, isa', [
    ('AMX', None, 'AMX'), ('AVX512', None, 'AVX512'), ('AVX2', None, 'AVX2'), ('AMX', 'AVX2', 'AVX2'),
    ('AMX', 'AVX512_CORE', 'AMX'), ('AVX512', 'avx2_vnni', 'AVX2'), ('AVX2', 'AVX512_CORE_AMX', 'AVX2'),
    ('AMX', 'SSE41', 'DEFAULT'), ('AMX', 'ALL', 'AMX')])
def test_onednn_isa_is_the_cpus_capped_by_the_environment(fresh_choice, cpu, cap, isa):
    fake_cpu(fresh_choice, cpu)
    if cap:
        fresh_choice.setenv('ONEDNN_MAX_CPU_ISA', cap)
    assert token_mix.onednn_isa() == isa
    assert token_mix.use_onednn() == (token_mix._HAS_LINEAR_POINTWISE and isa in token_mix.ONEDNN_ISAS)


def test_aten_cap_does_not_cap_onednn(fresh_choice):
    """ATEN_CPU_CAPABILITY=avx2 caps ATen's kernels only: oneDNN still runs the CPU's AVX-512."""
    fake_cpu(fresh_choice, 'AVX512')
    fresh_choice.setattr(torch.backends.cpu, 'get_cpu_capability', lambda: 'AVX2')
    assert token_mix.onednn_isa() == 'AVX512'


@pytest.mark.parametrize('forced, cpu, expected', [('1', 'AVX2', True), ('0', 'AMX', False), ('auto', 'AVX2', False),
                                                   ('auto', 'AVX512', True)])
def test_onednn_choice_can_be_forced(fresh_choice, forced, cpu, expected):
    fake_cpu(fresh_choice, cpu)
    fresh_choice.setenv(token_mix.ONEDNN_ENV, forced)
    assert token_mix.use_onednn() == (expected and token_mix._HAS_LINEAR_POINTWISE)
    block = Block(8, (4, 4)).eval()
    assert token_mix.onednn_fusable(block, torch.randn(3, 8)) == token_mix.use_onednn()
    fresh_choice.setenv(token_mix.ONEDNN_ENV, 'yes')
    token_mix.use_onednn.cache_clear()
    with pytest.raises(ValueError, match='GFNET_CPU_ONEDNN'):
        token_mix.use_onednn()


@pytest.mark.parametrize('grid', [(6, 6), (5, 8), (7, 4), (9, 7)])
def test_global_filter_function_gradcheck(grid):
    """Odd and even, square and not: the hand-written backward against finite differences."""
    torch.manual_seed(0)
    x = torch.randn(2, *grid, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(grid[0], grid[1] // 2 + 1, 3, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(global_filter.GlobalFilterFunction.apply, (x, weight))


@pytest.mark.parametrize('drop_prob, seed', [(0.5, 0), (0.5, 3), (0.2, 1), (0.999, 0), (0.0, 0)])
def test_stochastic_depth_skips_dropped_samples(drop_prob, seed):
    """Training computes the branch only for the samples drop path keeps; outputs, gradients and the
    random draws equal the plain ``x + drop_path(branch(x))`` of the modules under the same seed
    (in double precision: the fast path folds the drop-path factor into fc2, which rounds differently)."""
    torch.manual_seed(0)
    block = Block(8, (6, 5), drop_path=drop_prob, layer_scale_init=1e-3).train().double()
    block.gamma.data.uniform_(0.5, 1.5)
    x = torch.randn(8, 6, 5, 8, requires_grad=True, dtype=torch.float64)
    weights = torch.randn(8, 6, 5, 8, dtype=torch.float64)
    params = [x] + list(block.parameters())

    torch.manual_seed(seed)
    expected = x + block.drop_path(block.channel_mix(block.filter(block.norm1(x))))
    reference = torch.autograd.grad((expected * weights).sum(), params)
    after_reference = torch.rand(1)

    batches = []
    handle = block.filter.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
    torch.manual_seed(seed)
    got = block(x)
    assert torch.rand(1) == after_reference  # the same draws, no more
    handle.remove()
    torch.testing.assert_close(got, expected)
    # Every parameter gets a gradient, zeros when every sample is dropped, as in the plain path.
    for g, want in zip(torch.autograd.grad((got * weights).sum(), params), reference):
        torch.testing.assert_close(g, want)
    kept = int((expected - x).flatten(1).abs().sum(1).gt(0).sum())
    assert batches == [kept or x.shape[0]], (batches, kept)
