"""CUDA paths, run by ``make gpu-check`` on a machine with a GPU; skipped (with the reason) elsewhere,
CI included. Oracles: the CPU results, the other FFT code path, eager execution."""
import pytest
import torch

import gfnet_seg  # noqa: F401
from gfnet_seg.models import GFNetPyramid, global_filter

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA device (none here; run `make gpu-check` where there is one)')]
SMALL = dict(embed_dims=(32, 64, 96, 128), depths=(1, 2, 2, 1), layer_scale_init=1e-3, num_classes=10)


def small_model():
    torch.manual_seed(0)
    return GFNetPyramid(img_size=128, **SMALL)


def test_cufft_matches_cpu():
    model = small_model().eval()
    x = torch.randn(2, 3, 128, 160)
    with torch.no_grad():
        expected = model(x)
        got = model.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('grid', [(32, 32), (33, 20), (64, 48)])
def test_both_fft_code_paths_on_cuda(grid):
    """CUDA takes rfft2/irfft2; the CPU's rfft-then-fft path must agree with it on the GPU too."""
    x = torch.randn(2, *grid, 16, device='cuda')
    split = torch.fft.fft(torch.fft.rfft(x, dim=2, norm='ortho'), dim=1, norm='ortho')
    spectrum = global_filter.forward_transform(x)
    torch.testing.assert_close(spectrum, split, rtol=1e-4, atol=1e-4)
    back = torch.fft.irfft(torch.fft.ifft(spectrum, dim=1, norm='ortho'), n=grid[1], dim=2, norm='ortho')
    torch.testing.assert_close(global_filter.inverse_transform(spectrum, *grid), back, rtol=1e-4, atol=1e-4)


def test_custom_filter_gradients_on_cuda():
    x = torch.randn(2, 24, 30, 8, device='cuda', dtype=torch.float64, requires_grad=True)
    weight = torch.randn(24, 16, 8, device='cuda', dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(global_filter.GlobalFilterFunction.apply, (x, weight))


def test_fp16_amp_training_step_with_loss_scaler(fft_inputs):
    model = small_model().cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler('cuda')
    x, y = torch.randn(4, 3, 128, 128, device='cuda'), torch.randint(0, 10, (4,), device='cuda')
    for _ in range(3):
        with torch.autocast('cuda', dtype=torch.float16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        assert torch.isfinite(loss)
    assert fft_inputs and set(fft_inputs) <= {torch.float32, torch.complex64}


def test_torch_compile_on_cuda():
    model = small_model().cuda().eval()
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(2, 3, 128, 160, device='cuda')
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-3, atol=1e-3)


def test_semantic_fpn_training_step_on_gpu():
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    cfg = Config.fromfile('configs/sem_fpn/fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    with DefaultScope.overwrite_default_scope('mmseg'):
        segmentor = MODELS.build(cfg.model).cuda()
    optim_wrapper = build_optim_wrapper(segmentor, cfg.optim_wrapper)
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 512, 512)))
        samples.append(sample)
    data = dict(inputs=[torch.randint(0, 256, (3, 512, 512), dtype=torch.uint8) for _ in range(2)],
                data_samples=samples)
    losses = [sum(segmentor.train_step(data, optim_wrapper).values()).item() for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(losses)))
