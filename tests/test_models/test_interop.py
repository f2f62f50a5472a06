"""The models under TorchScript, torch.fx (and torchvision's feature extractor), torch.export and
torch.compile: each equals eager execution, at the traced input size and at another one."""
import pytest
import timm
import torch
from torch.export import Dim

import gfnet_seg  # noqa: F401  (registers the models)

from test_timm_api import PYRAMID, SMALL

FAMILIES = ['gfnet_h_ti', 'gfnet_ti']
SIZES = [(64, 96), (100, 72)]  # the second: not multiples of 32 (nor of 16)


def create(name, **kwargs):
    torch.manual_seed(0)
    return timm.create_model(name, **{**SMALL[name], **kwargs}).eval()


def images(size):
    return torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(size[0]))


def assert_same_as_eager(model, run):
    for size in SIZES:
        x = images(size)
        with torch.no_grad():
            torch.testing.assert_close(run(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', FAMILIES)
def test_torchscript(name):
    model = create(name)
    with pytest.warns(FutureWarning):  # torch.jit is deprecated upstream, and still works
        scripted = torch.jit.script(model)
    assert_same_as_eager(model, scripted)


@pytest.mark.parametrize('name', FAMILIES)
def test_fx_trace_and_torchvision_feature_extractor(name):
    from torchvision.models.feature_extraction import create_feature_extractor
    model = create(name)
    traced = torch.fx.symbolic_trace(model)
    assert_same_as_eager(model, traced)
    last = len(model.blocks) - 1
    extractor = create_feature_extractor(model, return_nodes={f'blocks.{last}': 'last', 'norm': 'normed'})
    assert_same_as_eager(model, lambda x: model.forward_head(extractor(x)['normed']))
    with torch.no_grad():
        x = images(SIZES[0])
        torch.testing.assert_close(extractor(x)['normed'], model.forward_features(x))


@pytest.mark.parametrize('name', FAMILIES)
def test_torch_export_with_free_height_and_width(name):
    """One exported program for every input size of at least two tokens per side at the last
    stride. Shape guards that sympy cannot decide (of the form ``a % b != 0``, from the FFTs' strides)
    become run-time asserts with ``prefer_deferred_runtime_asserts_over_guards``."""
    model = create(name)
    smallest = 2 * (model.strides[-1] if name in PYRAMID else model.patch_size)
    height, width = Dim('height', min=smallest, max=1024), Dim('width', min=smallest, max=1024)
    exported = torch.export.export(model, (images(SIZES[0]),), dynamic_shapes={'x': {2: height, 3: width}},
                                   prefer_deferred_runtime_asserts_over_guards=True)
    assert_same_as_eager(model, exported.module())


class CountingBackend:
    """A torch.compile backend that runs dynamo's graph as is and counts the graphs compiled."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        return graph_module.forward


@pytest.mark.parametrize('name', FAMILIES)
def test_torch_compile_once_per_input_size(name):
    """fullgraph=True: no graph break; in eval and in training, one graph per input size (the size
    caches are skipped under dynamo, so nothing recompiles), with eager's outputs and gradients."""
    torch._dynamo.reset()
    model = create(name)
    backend = CountingBackend()
    compiled = torch.compile(model, backend=backend, fullgraph=True, dynamic=False)
    assert_same_as_eager(model, compiled)
    with torch.no_grad():
        compiled(images(SIZES[0]))
    assert backend.graphs == len(SIZES)

    torch._dynamo.reset()
    model.train()
    backend = CountingBackend()
    compiled = torch.compile(model, backend=backend, fullgraph=True, dynamic=False)
    x = images(SIZES[0])
    for _ in range(2):
        compiled(x).square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model(x).square().sum().backward()
    for key, grad in grads.items():
        torch.testing.assert_close(grad / 2, model.get_parameter(key).grad, rtol=1e-4, atol=1e-6, msg=key)
    assert backend.graphs == 1
