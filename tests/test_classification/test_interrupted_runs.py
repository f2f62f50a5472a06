"""Interrupted runs: a real SIGKILL in the middle of saving a checkpoint keeps the previous one,
--resume from it ends where an uninterrupted run ends, and a NaN loss stops with the last
checkpoint named and intact."""
import errno
import itertools
import os
import signal

import pytest
import torch

from gfnet_seg.classification import NonFiniteLossError, main, read_log as read_run_log, trainer, write_log

from cls_utils import EASY_RECIPE, TINY_MODEL, read_log
from kill_utils import run_script

# The whole recipe (RandAugment, random erasing, repeated augmentation, mixup/cutmix, label
# smoothing, clipping) plus EMA and float16 AMP, whose loss scaler then has state to restore, with
# DataLoader workers, whose random streams must also repeat after a resume.
FULL_RECIPE = [*TINY_MODEL, '--num_workers', '2', '--epochs', '2', '--batch-size', '16', '--warmup-epochs', '0',
               '--lr', '2e-3', '--unscale-lr', '--model-ema', '--model-ema-decay', '0.9',
               '--amp', '--amp-dtype', 'float16']

# tools/train_cls.py, SIGKILLed halfway through writing the checkpoint of epoch 1.
KILLED_IN_SECOND_SAVE = '''
import runpy, sys
from gfnet_seg.classification import trainer
from kill_utils import die_halfway_through_next_write

save = trainer.atomic_torch_save

def save_and_die_in_epoch_1(state, path):
    if path.endswith('checkpoint.pth') and state['epoch'] == 1:
        die_halfway_through_next_write()
    save(state, path)

trainer.atomic_torch_save = save_and_die_in_epoch_1
sys.argv = ['tools/train_cls.py', *{flags!r}]
runpy.run_path('tools/train_cls.py', run_name='__main__')
'''


def load(output_dir, name='checkpoint.pth'):
    return torch.load(os.path.join(output_dir, name), weights_only=True)


def test_sigkill_while_saving_then_resume_matches_straight_run(tmp_path, image_data, repo_root, capsys):
    flags = [*FULL_RECIPE, '--data-path', image_data]
    straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
    main([*flags, '--output_dir', straight])

    result = run_script(KILLED_IN_SECOND_SAVE.format(flags=[*flags, '--output_dir', killed]), cwd=repo_root)
    assert result.returncode == -signal.SIGKILL, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'Epoch [1] Acc@1' in result.stdout  # it died after epoch 1, in the save
    assert load(killed)['epoch'] == 0  # the previous checkpoint, whole
    assert [entry['epoch'] for entry in read_log(killed)] == [0, 1]  # log.txt is written first, whole
    (temporary,) = [name for name in os.listdir(killed) if name.startswith('.checkpoint.pth.')]

    capsys.readouterr()
    main([*flags, '--output_dir', killed, '--resume', os.path.join(killed, 'checkpoint.pth')])
    assert (f'removed 1 temporary file(s) left in {killed} by a save that was interrupted: {temporary}'
            in capsys.readouterr().out)
    assert sorted(os.listdir(killed)) == ['checkpoint.pth', 'checkpoint_best.pth', 'log.txt']
    expected, resumed = load(straight), load(killed)
    assert resumed['epoch'] == 1
    assert resumed['scaler'] == expected['scaler'] and resumed['scaler']['_growth_tracker'] > 0
    assert resumed['lr_scheduler'] == expected['lr_scheduler']
    torch.testing.assert_close(resumed['model'], expected['model'])
    torch.testing.assert_close(resumed['model_ema'], expected['model_ema'])
    torch.testing.assert_close(resumed['optimizer']['state'], expected['optimizer']['state'])
    assert load(killed, 'checkpoint_best.pth')['epoch'] == load(straight, 'checkpoint_best.pth')['epoch']
    # Epoch 1 is logged once, from the resumed run, with the numbers of the straight run.
    log, expected_log = read_log(killed), read_log(straight)
    assert [entry['epoch'] for entry in log] == [0, 1]
    for key in ('train_lr', 'train_loss', 'test_loss', 'test_ema_loss'):
        assert log[1][key] == pytest.approx(expected_log[1][key], rel=1e-5), key


def test_resumed_log_keeps_earlier_epochs_and_skips_a_torn_line(tmp_path):
    path = str(tmp_path / 'log.txt')
    entries = [{'epoch': epoch, 'train_loss': 1. / (epoch + 1)} for epoch in range(3)]
    write_log(path, entries)
    assert read_log(tmp_path) == entries
    with open(path, 'a') as f:
        f.write('{"epoch": 3, "train_lo')  # as a run killed while appending leaves it
    assert read_run_log(path, before_epoch=4) == entries
    assert read_run_log(path, before_epoch=2) == entries[:2]  # epoch 2 is redone by the resumed run


@pytest.mark.parametrize('bad_call, bad_value, kept_epochs, message', [
    (1, float('inf'), [], r'loss is inf at epoch 0, iteration 1/4 \(iteration 1 of the run\).*'
                          r'No checkpoint was written'),
    (6, float('nan'), [0], r'loss is nan at epoch 1, iteration 2/4 \(iteration 6 of the run\).*'
                           r'The checkpoint of epoch 0, .*checkpoint.pth, is intact'),
])
def test_non_finite_loss_stops_naming_the_kept_checkpoint(tmp_path, image_data, monkeypatch, bad_call, bad_value,
                                                          kept_epochs, message):
    build_criterion = trainer.build_criterion

    def criterion_going_bad(*args):
        criterion, calls = build_criterion(*args), itertools.count(1)
        return lambda outputs, targets: criterion(outputs, targets) * (bad_value if next(calls) == bad_call else 1.)

    monkeypatch.setattr(trainer, 'build_criterion', criterion_going_bad)
    output_dir = str(tmp_path / 'run')
    with pytest.raises(NonFiniteLossError, match=message):  # 4 iterations per epoch
        main([*TINY_MODEL, *EASY_RECIPE, '--data-path', image_data, '--batch-size', '16', '--epochs', '2',
              '--output_dir', output_dir])
    if not kept_epochs:
        assert os.listdir(output_dir) == []
        return
    assert sorted(os.listdir(output_dir)) == ['checkpoint.pth', 'checkpoint_best.pth', 'log.txt']
    assert [entry['epoch'] for entry in read_log(output_dir)] == kept_epochs
    checkpoint = load(output_dir)
    assert checkpoint['epoch'] == kept_epochs[-1]
    assert all(value.isfinite().all() for value in checkpoint['model'].values())


def test_full_disk_stops_in_one_line_and_keeps_the_last_checkpoint(tmp_path, image_data, monkeypatch, capsys):
    """ENOSPC while checkpoint.pth of epoch 1 is written: tools/train_cls.py stops with one line
    naming the file, the error and the intact checkpoint of epoch 0; no temporary file is left."""
    output_dir = tmp_path / 'run'
    fdopen, saves = os.fdopen, itertools.count()

    def disk_full_at_second_checkpoint(fd, *args, **kwargs):
        if os.path.basename(os.readlink(f'/proc/self/fd/{fd}')).startswith('.checkpoint.pth.') and next(saves) == 1:
            os.close(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, 'fdopen', disk_full_at_second_checkpoint)
    with pytest.raises(SystemExit) as exit_info:
        trainer.cli([*TINY_MODEL, *EASY_RECIPE, '--data-path', image_data, '--batch-size', '16', '--epochs', '2',
                     '--output_dir', str(output_dir)])
    assert exit_info.value.code == 1
    last = output_dir / 'checkpoint.pth'
    assert capsys.readouterr().err == (f'error: cannot write {last}: No space left on device; training stopped. The '
                                       f'checkpoint of epoch 0, {last}, is intact: continue with --resume {last} '
                                       'once there is space.\n')
    assert sorted(os.listdir(output_dir)) == ['checkpoint.pth', 'checkpoint_best.pth', 'log.txt']
    assert load(output_dir)['epoch'] == 0


@pytest.mark.parametrize('flag', ['--resume', '--finetune'])
def test_truncated_checkpoint_is_named_in_one_line(tmp_path, flag, capsys):
    path = tmp_path / 'checkpoint.pth'
    torch.save({'model': {'w': torch.ones(512)}, 'epoch': 3}, path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(SystemExit) as exit_info:  # before the data is read: there is none
        trainer.cli([*TINY_MODEL, flag, str(path), '--data-path', str(tmp_path / 'nowhere')])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f'error: checkpoint {path} is truncated') and err.count('\n') == 1
