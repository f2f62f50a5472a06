"""Training curves from generated mmengine and train_cls logs."""
import json

import pytest

from gfnet_seg.analysis.logs import read_curves


def write_lines(path, entries):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(json.dumps(e) + '\n' for e in entries))


def seg_run(work_dir, timestamp, iters, val_iters):
    entries = []
    for i in iters:
        entries.append({'lr': 0.01, 'loss': 10. / i + (timestamp == 'b'), 'decode.loss_ce': 1., 'iter': i, 'step': i})
        if i in val_iters:
            entries.append({'aAcc': 50., 'mIoU': i / 10., 'mAcc': 1., 'step': i})
    write_lines(work_dir / timestamp / 'vis_data' / 'scalars.json', entries)


def test_segmentation_runs_are_joined_and_a_resume_wins(tool, tmp_path):
    seg_run(tmp_path, 'a', range(1, 7), {3, 6})
    seg_run(tmp_path, 'b', range(5, 10), {9})  # resumed from iteration 4
    curves = read_curves(str(tmp_path))
    assert curves.step_name == 'iteration'
    assert curves.losses['loss'] == {**{i: 10. / i for i in range(1, 5)}, **{i: 10. / i + 1 for i in range(5, 10)}}
    assert curves.metrics['mIoU'] == {3: 0.3, 6: 0.6, 9: 0.9}
    tool('plot_log')([str(tmp_path)])
    assert (tmp_path / 'curves.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_classification_log(tool, tmp_path):
    entries = [{'epoch': e, 'train_lr': 1e-3, 'train_loss': 5. - e, 'test_loss': 4. - e, 'test_acc1': 10. * e,
                'test_acc5': 50., 'test_ema_acc1': 9. * e, 'max_accuracy': 10. * e} for e in range(3)]
    write_lines(tmp_path / 'log.txt', entries)
    curves = read_curves(str(tmp_path))
    assert curves.step_name == 'epoch'
    assert curves.losses == {'train loss': {0: 5., 1: 4., 2: 3.}, 'val loss': {0: 4., 1: 3., 2: 2.}}
    assert curves.metrics == {'acc@1': {0: 0., 1: 10., 2: 20.}, 'acc@1 (EMA)': {0: 0., 1: 9., 2: 18.}}
    tool('plot_log')([str(tmp_path), '--out', str(tmp_path / 'out' / 'c.png')])
    assert (tmp_path / 'out' / 'c.png').exists()


def test_missing_or_broken_logs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='no training log'):
        read_curves(str(tmp_path))
    (tmp_path / 'log.txt').write_text('{"epoch": 0, "train_loss": 1.0}\nnot json\n')
    with pytest.raises(ValueError, match='log.txt:2 is not a JSON line'):
        read_curves(str(tmp_path))
