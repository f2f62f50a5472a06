"""Draw the learned global filters of a checkpoint: frequency magnitude and spatial kernel per channel.

    python tools/analysis/visualize_filters.py checkpoints/gfnet-h-ti.pth --out filters.png
    python tools/analysis/visualize_filters.py work_dirs/fpn/iter_80000.pth --out filters.png \
        --layers blocks.0.0 blocks.2.9 --channels 0 5
"""
import argparse

from gfnet_seg.analysis.filters import plot_filters, read_filters


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help="classification ({'model': ...}) or mmseg (state_dict) checkpoint")
    parser.add_argument('--out', default='filters.png')
    parser.add_argument('--layers', nargs='+', help='layer names (blocks.2.0) or positions; default: 4 spread evenly')
    parser.add_argument('--channels', nargs='+', type=int, default=[0, 1, 2, 3])
    parser.add_argument('--grid-width', type=int, help='token grid width, if odd (default 2 * (filter width - 1))')
    args = parser.parse_args(argv)
    filters = read_filters(args.checkpoint)
    drawn = plot_filters(filters, args.out, args.layers, args.channels, args.grid_width)
    print(f"drew {', '.join(drawn)} to {args.out}")


if __name__ == '__main__':
    main()
