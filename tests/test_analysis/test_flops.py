"""FLOP counting with FFT handlers: hand counts, the published model zoo, and the tool."""
import pytest
import torch
import torch.nn as nn

from gfnet_seg.analysis.flops import FLOP_CONVENTION, build_model, count_complexity, flop_analyzer
from gfnet_seg.models.gfnet import GFNetPyramid
from gfnet_seg.models.global_filter import GlobalFilter

# Published multiply-adds at 224x224 (GFNet paper, Tables 2 and 3).
MODEL_ZOO_GFLOPS = {'gfnet_ti': 1.3, 'gfnet_xs': 2.8, 'gfnet_s': 4.5, 'gfnet_b': 7.9,
                    'gfnet_h_ti': 2.0, 'gfnet_h_s': 4.5, 'gfnet_h_b': 8.4}


@pytest.mark.parametrize('height, width, dim, expected', [
    # HWD * ceil(log2(HW)) + HWD by hand:
    (14, 14, 8, 1568 * 8 + 1568),   # HW = 196 -> ceil(log2) = 8, HWD = 1568
    (12, 10, 4, 480 * 7 + 480),     # HW = 120 -> 7, HWD = 480
    (5, 7, 3, 105 * 6 + 105),       # HW = 35 -> 6, HWD = 105 (odd: the halves are 315 + 315)
])
@pytest.mark.parametrize('grad', [False, True])
def test_global_filter_counts_the_paper_formula(height, width, dim, expected, grad):
    layer = GlobalFilter(dim, height, width // 2 + 1).eval()
    with torch.set_grad_enabled(grad):
        analyzer = flop_analyzer(layer, (torch.randn(1, height, width, dim),))
        total = analyzer.total()
        by_op = analyzer.by_operator()
    assert total == expected
    assert set(by_op) == {'fft_rfft2', 'fft_irfft2'}  # nothing else in the layer is counted


def test_counts_add_up_over_a_batch_of_layers():
    model = nn.Sequential(GlobalFilter(8, 14, 8), GlobalFilter(8, 14, 8))
    assert flop_analyzer(model, (torch.randn(2, 14, 14, 8),)).total() == 2 * 2 * (1568 * 8 + 1568)


@pytest.mark.parametrize('name', MODEL_ZOO_GFLOPS)
def test_model_zoo_flops_at_224(name):
    model, parts = build_model(name)
    (counts,) = count_complexity(model, (224, 224), parts)
    assert counts.flops / 1e9 == pytest.approx(MODEL_ZOO_GFLOPS[name], rel=0.05)
    assert counts.params == sum(p.numel() for p in model.parameters())
    assert 0 < counts.fft_flops < counts.flops


def test_fft_share_grows_with_resolution():
    model = GFNetPyramid(embed_dims=(16, 32, 64, 128), depths=(1, 1, 2, 1), num_classes=10)
    shares = [count_complexity(model, (size, size))[0].fft_share for size in (64, 128, 256)]
    assert 0 < shares[0] < shares[1] < shares[2]


def test_segmentor_config_reports_model_and_backbone(repo_root):
    model, parts = build_model(f'{repo_root}/configs/sem_fpn/fpn_gfnet-h-ti_1xb2-300_synthetic-128x128.py')
    whole, backbone = count_complexity(model, (128, 160), parts)
    assert (whole.name, backbone.name) == ('model', 'backbone')
    assert backbone.params == sum(p.numel() for p in model.backbone.parameters()) < whole.params
    assert backbone.flops < whole.flops
    assert whole.fft_flops == backbone.fft_flops > 0  # the FFTs are all in the backbone


def test_get_flops_tool(tool, capsys):
    main = tool('get_flops')
    main(['gfnet_ti', '--shape', '224'])
    out = capsys.readouterr().out
    assert 'gfnet_ti at 224x224' in out and 'FFT' in out and FLOP_CONVENTION in out
    with pytest.raises(SystemExit):
        main(['gfnet_ti', '--shape', '1', '2', '3'])
