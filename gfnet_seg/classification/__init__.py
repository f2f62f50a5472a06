"""ImageNet-style pretraining and transfer of GFNet models (``tools/train_cls.py``); torch + timm only."""
from .checkpoint import (BEST_CHECKPOINT, LAST_CHECKPOINT, LOG_FILE, load_pretrained, read_log, resume,
                         training_state, write_log)
from .config import DATA_SETS, args_to_dict, get_args_parser, parse_args
from .data import (build_dataset, build_mixup, build_transform, check_images, check_same_classes, image_folder,
                   read_image)
from .engine import NonFiniteLossError, evaluate, train_one_epoch
from .trainer import build_criterion, build_loaders, build_model, build_optimizer, cli, effective_lr, main, resolve_amp

__all__ = [
    'BEST_CHECKPOINT', 'DATA_SETS', 'LAST_CHECKPOINT', 'LOG_FILE', 'NonFiniteLossError', 'args_to_dict',
    'build_criterion', 'build_dataset', 'build_loaders', 'build_mixup', 'build_model', 'build_optimizer', 'build_transform',
    'check_images', 'check_same_classes', 'cli', 'effective_lr', 'evaluate', 'get_args_parser', 'image_folder',
    'load_pretrained', 'main', 'parse_args', 'read_image', 'read_log', 'resolve_amp', 'resume', 'train_one_epoch',
    'training_state', 'write_log',
]
