"""ImageNet-style pretraining and transfer of GFNet models (``tools/train_cls.py``); torch + timm only."""
from .checkpoint import (BEST_CHECKPOINT, LAST_CHECKPOINT, LOG_FILE, load_pretrained, resume, save_checkpoint,
                         training_state)
from .config import DATA_SETS, args_to_dict, get_args_parser, parse_args
from .data import build_dataset, build_mixup, build_transform, check_same_classes, image_folder
from .engine import evaluate, train_one_epoch
from .trainer import build_criterion, build_loaders, build_model, effective_lr, main, resolve_amp

__all__ = [
    'BEST_CHECKPOINT', 'DATA_SETS', 'LAST_CHECKPOINT', 'LOG_FILE', 'args_to_dict', 'build_criterion',
    'build_dataset', 'build_loaders', 'build_mixup', 'build_model', 'build_transform', 'check_same_classes',
    'effective_lr', 'evaluate', 'get_args_parser', 'image_folder', 'load_pretrained', 'main', 'parse_args', 'resolve_amp',
    'resume', 'save_checkpoint', 'train_one_epoch', 'training_state',
]
