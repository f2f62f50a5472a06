"""The benchmark harness on tiny inputs: rows, skips, peak memory against known allocations, files,
paired ratios and their intervals."""
import math
import random
import statistics

import pytest
import torch

from gfnet_seg.analysis import benchmark as bench


def test_peak_memory_on_cpu_counts_live_tensor_bytes():
    kept = []

    def step():
        a = torch.empty(1000, 250)           # 1,000,000 bytes
        b = torch.empty(500, 1000)           # 2,000,000 bytes, both alive: the peak
        del a, b
        kept.append(torch.empty(100, 100))   # 40,000 bytes after the peak

    assert bench.peak_memory(step, torch.device('cpu')) == 3_000_000


def test_rows_for_backbone_and_segmentor(tmp_path):
    rows = bench.benchmark(['gfnet-h-ti'], sizes=[96, 64], parts=['backbone', 'segmentor'],
                           warmup=1, repeats=2)
    assert [(r['part'], r['height']) for r in rows] == [
        ('backbone', 64), ('segmentor', 64), ('backbone', 96), ('segmentor', 96)]
    for row in rows:
        assert row['status'] == 'ok', row
        assert 0 < row['latency_min_ms'] <= row['latency_ms']
        assert row['images_per_s'] == pytest.approx(1e3 / row['latency_ms'], rel=1e-2)
        assert row['peak_mem_mb'] > 0 and row['tokens'] == row['height'] ** 2 // 256
        calls = [float(t) for t in row['latencies_ms'].split()]
        assert len(calls) == 2  # every timed call, the medians and minimum taken from them
        assert statistics.median(calls) == pytest.approx(row['latency_ms'], abs=0.01)
        assert min(calls) == pytest.approx(row['latency_min_ms'], abs=0.01)
    backbone = bench.build('gfnet-h-ti')
    assert rows[0]['params_m'] == round(sum(p.numel() for p in backbone.parameters()) / 1e6, 2)
    assert rows[1]['params_m'] > rows[0]['params_m']  # neck and head on top

    bench.write_csv(rows, str(tmp_path / 'b.csv'))
    again = bench.read_csv(str(tmp_path / 'b.csv'))
    assert [float(r['latency_ms']) for r in again] == [r['latency_ms'] for r in rows]
    bench.plot(again, str(tmp_path / 'b.png'), 'test')
    assert (tmp_path / 'b.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_time_cap_skips_larger_sizes():
    rows = bench.benchmark(['gfnet-h-ti'], sizes=[64, 96], warmup=1, repeats=1, time_cap=0., memory=False)
    assert rows[0]['status'].startswith('time cap') and 'latency_ms' not in rows[0]
    assert rows[1]['status'] == f'skipped: {rows[0]["status"]} at 64x64'


@pytest.mark.parametrize('amp', [None, 'bf16'])
def test_train_step_backpropagates(amp):
    model = bench.build('gfnet-h-ti')
    step = bench.make_step(model, torch.randn(1, 3, 64, 64), train=True, amp=amp)
    step()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_compare_ratios_and_growth():
    rows = [dict(model=m, part='backbone', height=s, status='ok', latency_ms=t)
            for m, s, t in [('gfnet-h-ti', 512, 100.), ('gfnet-h-ti', 1024, 450.), ('swin-t', 512, 200.),
                            ('swin-t', 1024, 720.)]]
    lines = bench.compare(rows)
    assert 'backbone 512x512: gfnet-h-ti runs 2.00x the throughput of swin-t' in lines
    assert 'backbone 1024x1024: gfnet-h-ti runs 1.60x the throughput of swin-t' in lines
    bound = 65536 * math.log2(65536) / (16384 * math.log2(16384))  # stride-4 tokens at 1024 and 512
    assert f'backbone gfnet-h-ti 512 -> 1024: latency x4.50 (N log N of stride-4 tokens: x{bound:.2f})' in lines


def test_compare_pairs_the_calls_of_one_round():
    # the machine slows down over the run; each round's calls still stand in a 2.2:1 ratio but one
    rows = [dict(model='gfnet-h-ti', part='backbone', height='512', status='ok', latency_ms='200',
                 latencies_ms='100 150 200 250 300'),
            dict(model='swin-t', part='backbone', height='512', status='ok', latency_ms='500',
                 latencies_ms='220 330 500 550 660')]
    assert bench.compare(rows) == [
        'backbone 512x512: gfnet-h-ti runs 2.50x the throughput of swin-t '
        '(paired over 5 interleaved calls: 2.20x, 94% interval 2.20-2.50x)']


def test_paired_speedup_is_the_median_of_per_call_ratios():
    median, low, high, coverage = bench.paired_speedup([100., 200., 100.], [190., 400., 210.])
    assert (median, low, high) == pytest.approx((2.0, 1.9, 2.1))
    assert coverage == pytest.approx(0.75)  # [min, max] of 3 holds the median unless all 3 fall on one side
    with pytest.raises(ValueError, match='paired calls differ in number: 2 and 3'):
        bench.paired_speedup([1., 2.], [1., 2., 3.])


@pytest.mark.parametrize('n', [5, 15, 40])
def test_median_interval_covers_the_true_median_as_often_as_it_says(n):
    # the oracle: samples of a distribution whose median is known (log-normal around 2.3)
    rng = random.Random(n)
    trials, hits, coverages = 4000, 0, set()
    for _ in range(trials):
        median, low, high, coverage = bench.median_interval([2.3 * math.exp(rng.gauss(0, 0.1)) for _ in range(n)])
        assert low <= median <= high
        hits += low <= 2.3 <= high
        coverages.add(coverage)
    (coverage,) = coverages
    assert coverage >= 0.95 or n == 5  # 5 values cannot reach 95%: min and max hold the median 94% of the time
    assert hits / trials == pytest.approx(coverage, abs=0.015)


def test_bad_names_are_named():
    with pytest.raises(ValueError, match="unknown model 'swin-x'"):
        bench.build('swin-x')
    with pytest.raises(ValueError, match="unknown --amp 'fp8'"):
        bench.benchmark(['gfnet-h-ti'], amp='fp8')


def test_tool_writes_csv_and_png(tool, tmp_path, capsys):
    tool('benchmark')(['--models', 'gfnet-h-ti', 'resnet-50', '--sizes', '64', '--warmup', '0', '--repeats', '1',
                       '--threads', '1', '--out', str(tmp_path / 'run')])
    rows = bench.read_csv(str(tmp_path / 'run.csv'))
    assert [(r['model'], r['status'], r['threads']) for r in rows] == [
        ('gfnet-h-ti', 'ok', '1'), ('resnet-50', 'ok', '1')]
    assert (tmp_path / 'run.png').exists()
    assert 'gfnet-h-ti runs' in capsys.readouterr().out  # against resnet-50
