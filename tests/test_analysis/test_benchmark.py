"""The benchmark harness on tiny inputs: rows, skips, peak memory against known allocations, files,
paired ratios and their intervals."""
import math
import os
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


@pytest.mark.parametrize('text, expected', [('512', (512, 512)), (512, (512, 512)), ('1333x800', (800, 1333)),
                                            ('96X64', (64, 96)), ((800, 1333), (800, 1333))])
def test_parse_size_reads_sides_and_width_by_height(text, expected):
    assert bench.parse_size(text) == expected
    assert bench.size_name(*expected) == (f'{expected[1]}x{expected[0]}')


@pytest.mark.parametrize('text', ['1333x', 'x800', '1333x800x3', 'big', '0', '-5x4'])
def test_parse_size_names_a_bad_size(text):
    with pytest.raises(ValueError, match='bad size'):
        bench.parse_size(text)


def test_non_square_sizes_resize_the_filters():
    """A WIDTHxHEIGHT size runs as (height, width), GFNet-H resizing its filters to the non-square grid."""
    rows = bench.benchmark(['gfnet-h-ti'], sizes=['96x64', 64], warmup=0, repeats=1, memory=False)
    assert [(r['height'], r['width'], r['tokens'], r['status']) for r in rows] == [
        (64, 64, 16, 'ok'), (64, 96, 24, 'ok')]
    model = bench.build('gfnet-h-ti').eval()
    with torch.no_grad():
        features = model(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in features] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    filters = [m for m in model.modules() if type(m).__name__ == 'GlobalFilter']
    first = filters[0]
    assert tuple(first.complex_weight.shape[:2]) == (128, 65)  # built for 512 crops
    assert tuple(first.spectral_weight((16, 24)).shape[:2]) == (16, 13)  # resized to the 16x24 grid


@pytest.fixture(scope='module')
def light_detector(tmp_path_factory):
    """The benchmark's Mask R-CNN config with fewer proposals and kept boxes (the heads' work is what
    the tests here do not need in full; --det-config takes it)."""
    path = tmp_path_factory.mktemp('det_config') / 'light_mask_rcnn.py'
    path.write_text(f"""_base_ = [{os.path.abspath(bench.DET_CONFIG)!r}]
model = dict(train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=64), rcnn=dict(sampler=dict(num=64))),
             test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=20)))
""")
    return str(path)


def test_detection_preset_runs_inference_and_training(tool, tmp_path, capsys, light_detector):
    from importlib.util import module_from_spec, spec_from_file_location
    path = os.path.join(os.path.dirname(__file__), '..', '..', 'tools', 'analysis', 'benchmark.py')
    spec = spec_from_file_location('benchmark_tool_args', path)
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.parse_args(['--detection'])
    assert args.sizes == [(800, 1333)] and args.models == ['gfnet-h-ti', 'swin-t', 'pvtv2-b2']
    assert module.parse_args(['--sizes', '1333x800', '512']).sizes == [(800, 1333), (512, 512)]

    tool('benchmark')(['--detection', '--models', 'gfnet-h-ti', 'resnet-50', '--sizes', '96x64', '--warmup', '0',
                       '--repeats', '1', '--threads', '1', '--no-memory', '--det-config', light_detector,
                       '--out', str(tmp_path / 'det')])
    rows = bench.read_csv(str(tmp_path / 'det.csv'))
    assert [(r['model'], r['part'], r['mode'], r['batch'], r['height'], r['width'], r['status']) for r in rows] == [
        (model, part, mode, batch, '64', '96', 'ok') for mode, batch in (('infer', '1'), ('train', '2'))
        for model in ('gfnet-h-ti', 'resnet-50') for part in ('backbone', 'detector')]
    out = capsys.readouterr().out
    assert out.startswith('machine: ')
    for group in ('backbone', 'backbone train batch 2', 'detector', 'detector train batch 2'):
        assert f'{group} 96x64: gfnet-h-ti runs' in out, group
    assert module.parse_args(['--detection', '--parts', 'detector']).parts == ['detector']
    assert module.parse_args([]).parts == ['backbone']


def test_detection_batch_instances_lie_in_their_images():
    data = bench.detection_batch(2, 60, 90, instances=5, seed=3)
    assert [tuple(image.shape) for image in data['inputs']] == [(3, 60, 90)] * 2
    assert all(image.dtype == torch.uint8 for image in data['inputs'])
    for sample in data['data_samples']:
        boxes, masks = sample.gt_instances.bboxes, sample.gt_instances.masks.masks
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 90).all() and (boxes[:, 3] <= 60).all()
        assert (width >= 90 / 16 - 1e-4).all() and (height >= 60 / 16 - 1e-4).all()
        for box, mask, area in zip(boxes.tolist(), masks, (width * height).tolist()):
            x0, y0, x1, y1 = box
            rows, cols = mask.nonzero()
            assert cols.min() >= x0 - 0.5 and cols.max() <= x1 + 0.5
            assert rows.min() >= y0 - 0.5 and rows.max() <= y1 + 0.5
            assert mask.sum() == pytest.approx(math.pi / 4 * area, rel=0.25)  # the ellipse in the box
    assert not torch.equal(data['inputs'][0], bench.detection_batch(2, 60, 90, instances=5, seed=4)['inputs'][0])


def test_detectors_keep_their_backbone_rows_modules_and_every_box(light_detector):
    """A detector row runs the backbone row's module under the config's neck and heads: GFNet-H with
    the filters of the padded detection input; every image keeps max_per_img detections, masks
    included; a training step reaches the filters and the mask head."""
    from mmengine.config import Config
    det_cfg = Config.fromfile(light_detector).model
    detector = bench.build('gfnet-h-ti', 'detector', det_config=light_detector)
    first = next(m for m in detector.backbone.modules() if type(m).__name__ == 'GlobalFilter')
    height, width = det_cfg.backbone.img_size
    assert tuple(first.complex_weight.shape[:2]) == (height // 4, width // 8 + 1)
    assert detector.roi_head.test_cfg.score_thr == 0 and det_cfg.test_cfg.rcnn.score_thr > 0
    swin = bench.build('swin-t', 'detector', det_config=light_detector)
    assert type(swin.backbone) is type(bench.build('swin-t'))
    assert swin.neck.lateral_convs[0].conv.in_channels == bench.PEERS['swin-t'][1][0]

    torch.manual_seed(0)
    data = bench.detection_batch(1, 96, 128)
    bench.make_step(detector, torch.empty(0), False, None, data)()
    detector.eval()
    with torch.no_grad():
        predictions = detector.test_step(data)[0].pred_instances
    assert len(predictions) == det_cfg.test_cfg.rcnn.max_per_img
    assert tuple(predictions.masks.shape) == (len(predictions), 96, 128)

    bench.make_step(detector, torch.empty(0), True, None, bench.detection_batch(2, 96, 128))()
    for module in (first, detector.roi_head.mask_head):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), type(module).__name__


def test_plots_label_their_axes_and_draw_one_size_as_bars(monkeypatch, tmp_path):
    figures = []
    monkeypatch.setattr(bench, 'save_figure', lambda fig, path, title='': figures.append(fig))
    rows = [dict(model=m, part=part, mode=mode, batch=batch, height=800, width=1333, tokens=4165, status='ok',
                 latency_ms=t, peak_mem_mb=t / 10)
            for m, part, mode, batch, t in [('gfnet-h-ti', 'backbone', 'infer', 1, 100.),
                                            ('swin-t', 'backbone', 'infer', 1, 250.),
                                            ('gfnet-h-ti', 'detector', 'train', 2, 1000.),
                                            ('swin-t', 'detector', 'train', 2, 2000.)]]
    rows.append(dict(rows[-1], model='pvtv2-b2', status='out of memory', latency_ms=None))
    bench.plot(rows, str(tmp_path / 'one.png'))
    bench.plot(rows + [dict(row, height=512, width=512, tokens=1024) for row in rows], str(tmp_path / 'two.png'))
    one, two = figures
    assert [ax.get_ylabel() for ax in one.axes] == [ax.get_ylabel() for ax in two.axes] == [
        'latency (ms)', 'peak memory (MiB)']
    latency = one.axes[0]
    assert sorted(round(bar.get_height()) for bar in latency.patches) == [100, 250, 1000, 2000]  # no bar for OOM
    ticks = [t.get_text().replace('\n', ' ') for t in latency.get_xticklabels()]
    assert ticks == ['backbone', 'detector train batch 2']
    assert latency.get_xlabel() == 'at 1333x800'
    assert not two.axes[0].patches and len(two.axes[0].get_lines()) == 4


def test_compare_keeps_modes_and_batches_apart():
    rows = [dict(model=m, part='backbone', mode=mode, batch=batch, height=800, width=1333, status='ok', latency_ms=t)
            for m, mode, batch, t in [('gfnet-h-ti', 'infer', 1, 100.), ('swin-t', 'infer', 1, 250.),
                                      ('gfnet-h-ti', 'train', 2, 1000.), ('swin-t', 'train', 2, 2000.)]]
    assert bench.compare(rows) == ['backbone 1333x800: gfnet-h-ti runs 2.50x the throughput of swin-t',
                                   'backbone train batch 2 1333x800: gfnet-h-ti runs 2.00x the throughput of swin-t']
