"""Command-line flags of ``tools/train_cls.py``: those of the official GFNet/DeiT ``main.py``.

Defaults are the paper's ImageNet recipe. ``--config FILE.yaml`` sets defaults from a YAML file
of the same flags (dashes or underscores); flags given on the command line still win.
"""
import argparse
from typing import Optional, Sequence

import yaml

DATA_SETS = ('IMNET', 'CIFAR10', 'CIFAR100', 'FLOWERS', 'CARS', 'FOLDER')


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser('GFNet training and evaluation', add_help=True)
    parser.add_argument('--config', default='', metavar='FILE.yaml',
                        help='YAML file of flag defaults; command-line flags override it')
    parser.add_argument('--batch-size', default=128, type=int, help='per process')
    parser.add_argument('--epochs', default=300, type=int)

    group = parser.add_argument_group('model')
    group.add_argument('--arch', default='gfnet-h-ti', type=str,
                       help="gfnet-{ti,xs,s,b,h-ti,h-s,h-b} or the timm names gfnet_h_ti, ...")
    group.add_argument('--input-size', default=224, type=int, help='image size (square)')
    group.add_argument('--drop', type=float, default=0.0, help='dropout rate')
    group.add_argument('--drop-path', type=float, default=None,
                       help="stochastic depth rate; default: the arch's value in the model table")
    group.add_argument('--embed-dims', type=int, nargs='+', default=None,
                       help='override widths (one per stage; a single value for isotropic GFNet)')
    group.add_argument('--depths', type=int, nargs='+', default=None,
                       help='override depths (one per stage; a single value for isotropic GFNet)')
    group.add_argument('--model-ema', action=argparse.BooleanOptionalAction, default=False,
                       help='keep an exponential moving average of the weights (ModelEmaV3)')
    group.add_argument('--model-ema-decay', type=float, default=0.99996)

    group = parser.add_argument_group('optimizer')
    group.add_argument('--opt', default='adamw', type=str, help='timm optimizer name')
    group.add_argument('--opt-eps', default=1e-8, type=float)
    group.add_argument('--opt-betas', default=None, type=float, nargs='+')
    group.add_argument('--clip-grad', type=float, default=1.0, help='gradient norm clip; 0 disables')
    group.add_argument('--momentum', type=float, default=0.9)
    group.add_argument('--weight-decay', type=float, default=0.05)

    group = parser.add_argument_group('learning rate schedule')
    group.add_argument('--sched', default='cosine', type=str, help='timm scheduler name')
    group.add_argument('--lr', type=float, default=5e-4,
                       help='for a total batch of 512; scaled linearly to the real total batch')
    group.add_argument('--unscale-lr', action='store_true', help='use --lr as given, without scaling')
    group.add_argument('--warmup-lr', type=float, default=1e-6)
    group.add_argument('--min-lr', type=float, default=1e-5)
    group.add_argument('--warmup-epochs', type=int, default=5)
    group.add_argument('--decay-epochs', type=float, default=30, help='for step schedules')
    group.add_argument('--decay-rate', type=float, default=0.1, help='for step schedules')

    group = parser.add_argument_group('augmentation and regularisation')
    group.add_argument('--no-aug', action='store_true',
                       help='train without augmentation: resize and centre crop, as timm --no-aug')
    group.add_argument('--color-jitter', type=float, default=0.4)
    group.add_argument('--aa', type=str, default='rand-m9-mstd0.5-inc1',
                       help="timm auto-augment policy; 'none' disables")
    group.add_argument('--smoothing', type=float, default=0.1, help='label smoothing')
    group.add_argument('--train-interpolation', type=str, default='bicubic')
    group.add_argument('--crop-pct', type=float, default=0.875, help='eval: resize to size / crop-pct, centre crop')
    group.add_argument('--repeated-aug', action=argparse.BooleanOptionalAction, default=True,
                       help='repeated augmentation sampler (3 augmented copies per image, DeiT)')
    group.add_argument('--reprob', type=float, default=0.25, help='random erasing probability')
    group.add_argument('--remode', type=str, default='pixel')
    group.add_argument('--recount', type=int, default=1)
    group.add_argument('--mixup', type=float, default=0.8, help='mixup alpha; 0 disables')
    group.add_argument('--cutmix', type=float, default=1.0, help='cutmix alpha; 0 disables')
    group.add_argument('--cutmix-minmax', type=float, nargs='+', default=None)
    group.add_argument('--mixup-prob', type=float, default=1.0)
    group.add_argument('--mixup-switch-prob', type=float, default=0.5)
    group.add_argument('--mixup-mode', type=str, default='batch', choices=('batch', 'pair', 'elem'))

    group = parser.add_argument_group('checkpoints')
    group.add_argument('--finetune', default='', metavar='CKPT',
                       help='start from these weights (any resolution; a mismatched head is dropped)')
    group.add_argument('--resume', default='', metavar='CKPT',
                       help='continue training from a checkpoint.pth; with --eval, the weights to evaluate')
    group.add_argument('--start_epoch', default=0, type=int)
    group.add_argument('--eval', action='store_true', help='only evaluate on the val split')

    group = parser.add_argument_group('data and run')
    group.add_argument('--data-path', default='data/imagenet', type=str,
                       help='folder with train/<class>/* and val/<class>/* (CIFAR: the torchvision root)')
    group.add_argument('--data-set', default='IMNET', type=str.upper, choices=DATA_SETS,
                       help='IMNET, FLOWERS, CARS and FOLDER read the ImageFolder layout')
    group.add_argument('--output_dir', '--output-dir', default='', help='where checkpoints and log.txt go')
    group.add_argument('--device', default=None, help='default: cuda when available, else cpu')
    group.add_argument('--seed', default=0, type=int)
    group.add_argument('--amp', action=argparse.BooleanOptionalAction, default=None,
                       help='mixed precision; default on with CUDA (float16), off on CPU')
    group.add_argument('--amp-dtype', default=None, choices=('float16', 'bfloat16'),
                       help='default: float16 on CUDA, bfloat16 on CPU')
    group.add_argument('--dist-eval', action='store_true', help='split validation across processes')
    group.add_argument('--check-images', action=argparse.BooleanOptionalAction, default=True,
                       help='open every image header before training, so that a corrupt file stops the run at once')
    group.add_argument('--num_workers', '--num-workers', default=10, type=int)
    group.add_argument('--pin-mem', action=argparse.BooleanOptionalAction, default=True)
    group.add_argument('--log-interval', default=50, type=int, help='iterations between log lines')
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse flags; a ``--config`` YAML file supplies defaults that the command line overrides."""
    parser = get_args_parser()
    config_args, _ = parser.parse_known_args(argv)
    if config_args.config:
        parser.set_defaults(**_read_config(config_args.config, parser))
    return parser.parse_args(argv)


def _read_config(path: str, parser: argparse.ArgumentParser) -> dict:
    try:
        with open(path) as f:
            config = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f'config file not found: {path}') from None
    if not isinstance(config, dict):
        raise ValueError(f'{path}: expected a mapping of flag names to values, got {type(config).__name__}')
    dests = {action.dest for action in parser._actions}
    defaults = {str(key).replace('-', '_'): value for key, value in config.items()}
    unknown = sorted(set(defaults) - dests)
    if unknown:
        raise ValueError(f'{path}: unknown flags {unknown}; see tools/train_cls.py --help')
    return defaults


PLAIN_TYPES = (bool, int, float, str, type(None))


def _plain(value):
    """``value`` built from the types ``torch.load(weights_only=True)`` accepts: tuples become
    lists and anything else (e.g. a date that YAML parsed) its string."""
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value if isinstance(value, PLAIN_TYPES) else str(value)


def args_to_dict(args: argparse.Namespace) -> dict:
    """The flags as plain Python values, so that a checkpoint holding them loads with
    ``torch.load(weights_only=True)``."""
    return _plain(vars(args))
