"""Parameters and FLOPs (multiply-adds), the global filter's FFTs included, of a model at one input size.

    python tools/analysis/get_flops.py gfnet_h_ti
    python tools/analysis/get_flops.py configs/sem_fpn/fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512.py --shape 512 512
"""
import argparse

from gfnet_seg.analysis.flops import FLOP_CONVENTION, build_model, count_complexity


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='a timm model name (e.g. gfnet_h_ti) or an mmseg config file')
    parser.add_argument('--shape', type=int, nargs='+', default=[224], metavar='SIZE',
                        help='input H W (one number for a square); default 224')
    args = parser.parse_args(argv)
    if len(args.shape) not in (1, 2) or min(args.shape) < 1:
        parser.error(f'--shape takes H W or one size, got {args.shape}')
    shape = args.shape * 2 if len(args.shape) == 1 else args.shape
    model, parts = build_model(args.model)
    print(f'{args.model} at {shape[0]}x{shape[1]}:')
    for counts in count_complexity(model, shape, parts):
        print(f'  {counts}')
    print(FLOP_CONVENTION)


if __name__ == '__main__':
    main()
