"""Robustness of a classifier or a segmentor: white-box attacks and ImageNet-C's corruptions.

    # the GFNet paper's Table 3 for one classifier (any GFNet arch or timm model name)
    python tools/analysis/robustness.py cls --arch gfnet-h-ti --checkpoint checkpoints/gfnet-h-ti.pth \\
        --data-path data/imagenet --baseline-errors alexnet \\
        --extra imagenet-a=data/imagenet-a imagenet-v2=data/imagenetv2-matched-frequency
    # a segmentor: mIoU clean, under the 15 corruptions x 5 severities and under PGD; CSV + picture
    python tools/analysis/robustness.py seg CONFIG CHECKPOINT --out work_dirs/robustness/seg
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer, registers the models)

import argparse
import os
import sys

import torch
from mmengine.config import DictAction

from gfnet_seg.apis import exit_on_error, load_config
from gfnet_seg.robustness.attacks import AttackSettings
from gfnet_seg.robustness.corruptions import CORRUPTIONS, SEVERITIES

ATTACK_HELP = ('L-inf white-box attack settings, in 0-255 pixel units of the image before normalisation. '
               'Defaults (eps 1, PGD 5 steps of 0.5, random start) are the budget of the ImageNet ViT '
               'robustness comparisons the GFNet paper follows (RVT, Mao et al. 2022, evaluated with EasyRobust, '
               'which the GFNet authors name as their tool): small enough that models keep a measurable accuracy')


def add_common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('attacks', ATTACK_HELP)
    group.add_argument('--eps', type=float, default=1., help='perturbation budget (default 1 = 1/255)')
    group.add_argument('--steps', type=int, default=5, help='PGD iterations')
    group.add_argument('--step-size', type=float, default=0.5, help='PGD step size')
    group.add_argument('--no-random-start', dest='random_start', action='store_false',
                       help='start PGD at the image instead of a uniform random point of the eps-ball')
    group = parser.add_argument_group('corruptions')
    group.add_argument('--corruptions', nargs='*', default=list(CORRUPTIONS), metavar='NAME',
                       help='ImageNet-C corruptions to apply (default: all 15; none: give the flag alone)')
    group.add_argument('--severities', nargs='+', type=int, default=list(SEVERITIES), help='default 1 2 3 4 5')
    parser.add_argument('--seed', type=int, default=0, help='seeds the corruptions and the PGD start')
    parser.add_argument('--out', default=None, help='folder for the CSV files (and picture)')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)

    cls = commands.add_parser('cls', help='classifier: clean, FGSM, PGD, corruptions (mCE), extra folders')
    cls.add_argument('--arch', default='gfnet-h-ti', help='a GFNet arch (gfnet-h-ti, gfnet_s, ...) or a timm model name')
    cls.add_argument('--checkpoint', required=True, help='weights (official, train_cls.py or timm state dict)')
    cls.add_argument('--data-path', default='data/imagenet', help='ImageNet-layout folder; its val/ is evaluated')
    cls.add_argument('--input-size', type=int, default=224)
    cls.add_argument('--crop-pct', type=float, default=0.875, help='resize to input-size / crop-pct, centre crop')
    cls.add_argument('--embed-dims', type=int, nargs='+', default=None, help='GFNet widths (small models)')
    cls.add_argument('--depths', type=int, nargs='+', default=None, help='GFNet depths (small models)')
    cls.add_argument('--classes', default='', metavar='FILE',
                     help="the head's classes, one per line in output order (ImageNet: the 1000 WordNet ids); "
                          'default: the class folders of val/')
    cls.add_argument('--extra', nargs='+', default=[], metavar='NAME=FOLDER',
                     help='plain folders to score, e.g. imagenet-a=PATH imagenet-v2=PATH: sub-folders named by a '
                          'class of --classes (ImageNet-A/R) or by the output index (ImageNet-V2); the logits are '
                          "restricted to the folder's classes (ImageNet-A's 200)")
    cls.add_argument('--attacks', nargs='*', default=['fgsm', 'pgd'], choices=['fgsm', 'pgd'],
                     help='default: fgsm pgd; none: give the flag alone')
    cls.add_argument('--baseline-errors', default='', metavar='alexnet|CSV',
                     help="mCE against 'alexnet' (the published ImageNet-C errors) or a CSV corruption,error "
                          '(e.g. corruption_errors.csv of another run)')
    cls.add_argument('--batch-size', type=int, default=64)
    cls.add_argument('--num-workers', type=int, default=4)
    cls.add_argument('--device', default=None, help='default: cuda when available, else cpu')
    add_common(cls)

    seg = commands.add_parser('seg', help='segmentor: mIoU clean, under corruptions and under PGD; CSV and picture')
    seg.add_argument('config')
    seg.add_argument('checkpoint')
    seg.add_argument('--work-dir', help='for the runner logs')
    seg.add_argument('--no-attack', dest='attack', action='store_false', help='skip PGD')
    seg.add_argument('--show-index', type=int, default=0, help='test image shown in the picture')
    seg.add_argument('--show-severity', type=int, default=None, help='severity shown (default 3, or the highest given)')
    seg.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    add_common(seg)
    return parser.parse_args(argv)


def extra_sets(pairs) -> dict:
    sets = {}
    for pair in pairs:
        name, sep, folder = pair.partition('=')
        if not sep or not name or not folder:
            raise ValueError(f'--extra takes NAME=FOLDER, got {pair!r}')
        sets[name] = folder
    return sets


def run_cls(args) -> None:
    from gfnet_seg.robustness import classification

    config = classification.ClsRobustnessConfig(
        data_path=args.data_path, attacks=args.attacks,
        attack=AttackSettings(args.eps, args.steps, args.step_size, args.random_start),
        corruptions=args.corruptions, severities=args.severities, extra_sets=extra_sets(args.extra),
        classes_file=args.classes, input_size=args.input_size, crop_pct=args.crop_pct,
        batch_size=args.batch_size, num_workers=args.num_workers, seed=args.seed)
    config.check()
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    head = (classification.read_classes(args.classes) if args.classes else
            classification.image_folder(os.path.join(args.data_path, 'val')).classes)
    model = classification.build_classifier(args.arch, len(head), args.input_size, args.checkpoint,
                                            args.embed_dims, args.depths).to(device)
    out = args.out or os.path.join('work_dirs', 'robustness', args.arch)
    _, _, report = classification.run(model, config, out, device, args.baseline_errors)
    print(report)
    print(f'results in {out}/')


def run_seg(args) -> None:
    from gfnet_seg.robustness import segmentation

    attack = AttackSettings(args.eps, args.steps, args.step_size, args.random_start) if args.attack else None
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    out = args.out or os.path.join('work_dirs', 'robustness', os.path.splitext(os.path.basename(args.config))[0])
    _, report = segmentation.run(cfg, args.checkpoint, out, args.corruptions, args.severities, attack,
                                 args.seed, args.show_index, args.show_severity)
    print(report)
    print(f'results in {out}/ (seg_robustness.csv, robustness.png)')


def main(argv=None) -> None:
    args = parse_args(argv)
    with exit_on_error():
        try:
            run_cls(args) if args.command == 'cls' else run_seg(args)
        except ImportError as err:  # an optional dependency (the robustness extra) is missing
            print(f'error: {err}', file=sys.stderr)
            raise SystemExit(1) from None


if __name__ == '__main__':
    main()
