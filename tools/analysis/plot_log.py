"""Plot loss and mIoU (tools/train.py work dir) or acc@1 (tools/train_cls.py output dir) to a PNG.

    python tools/analysis/plot_log.py work_dirs/fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512
    python tools/analysis/plot_log.py work_dirs/gfnet-h-ti --out curves.png
"""
import argparse
import os

from gfnet_seg.analysis.logs import plot_curves, read_curves


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir')
    parser.add_argument('--out', help='default: WORK_DIR/curves.png')
    args = parser.parse_args(argv)
    out = args.out or os.path.join(args.work_dir, 'curves.png')
    plot_curves(read_curves(args.work_dir), out, title=os.path.basename(os.path.normpath(args.work_dir)))
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
