"""--resume: a run interrupted after an epoch and resumed ends exactly where an uninterrupted one does."""
import os

import pytest
import torch

from gfnet_seg.classification import main, trainer

from cls_utils import TINY_MODEL, read_log


class Interrupted(Exception):
    """Stands in for a crash or a kill in the middle of training."""


def load(output_dir):
    return torch.load(os.path.join(output_dir, 'checkpoint.pth'), weights_only=True)


def test_resume_restores_optimizer_schedule_scaler_and_ema(tmp_path, image_data, monkeypatch):
    # The full recipe (RandAugment, random erasing, repeated augmentation, mixup/cutmix, label
    # smoothing, clipping) plus EMA and float16 AMP, whose loss scaler then has state to restore.
    flags = [*TINY_MODEL, '--data-path', image_data, '--epochs', '2', '--batch-size', '16', '--warmup-epochs', '0',
             '--lr', '2e-3', '--unscale-lr', '--model-ema', '--model-ema-decay', '0.9', '--amp', '--amp-dtype', 'float16']
    straight, interrupted = str(tmp_path / 'straight'), str(tmp_path / 'interrupted')
    main([*flags, '--output_dir', straight])

    train_one_epoch = trainer.train_one_epoch

    def crash_in_second_epoch(*args, **kwargs):
        if args[5] == 1:  # the epoch argument
            raise Interrupted
        return train_one_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, 'train_one_epoch', crash_in_second_epoch)
    with pytest.raises(Interrupted):
        main([*flags, '--output_dir', interrupted])
    monkeypatch.undo()
    assert load(interrupted)['epoch'] == 0
    main([*flags, '--output_dir', interrupted, '--resume', os.path.join(interrupted, 'checkpoint.pth')])

    expected, resumed = load(straight), load(interrupted)
    assert resumed['epoch'] == 1
    assert resumed['scaler'] == expected['scaler'] and resumed['scaler']['_growth_tracker'] > 0
    assert resumed['lr_scheduler'] == expected['lr_scheduler']
    torch.testing.assert_close(resumed['model'], expected['model'])
    torch.testing.assert_close(resumed['model_ema'], expected['model_ema'])
    torch.testing.assert_close(resumed['optimizer']['state'], expected['optimizer']['state'])
    # Epoch 1 ran once, at the scheduled learning rate, and saw the same batches.
    log, expected_log = read_log(interrupted), read_log(straight)
    assert [entry['epoch'] for entry in log] == [0, 1]
    for key in ('train_lr', 'train_loss', 'test_loss', 'test_ema_loss'):
        assert log[1][key] == pytest.approx(expected_log[1][key], rel=1e-5), key
