"""The config zoo table: every config under configs/ with its head, backbone, data set, crop, schedule,
parameters and FLOPs at the crop (FFTs counted), as Markdown, plus mmseg's UperNet Swin-T for reference.

    python tools/analysis/config_table.py                     # print the table (a few minutes on 2 cores)
    python tools/analysis/config_table.py --update README.md  # rewrite the README's table in place
    python tools/analysis/config_table.py --no-flops          # parameters only, in seconds
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer, registers GFNetH)

import argparse

from gfnet_seg.analysis.config_table import REFERENCE_CONFIGS, config_rows, markdown_table, table_in, update_table_in
from gfnet_seg.fileio import exit_on_error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--configs', default='configs', help='folder of configs (default: configs)')
    parser.add_argument('--no-flops', action='store_true', help='leave the FLOPs column empty (fast)')
    parser.add_argument('--no-reference', action='store_true', help=f'leave out {", ".join(REFERENCE_CONFIGS)}')
    parser.add_argument('--update', metavar='README', help='replace the table between the marker comments of this file')
    args = parser.parse_args(argv)
    with exit_on_error((ValueError, FileNotFoundError)):
        if args.update:
            table_in(args.update)  # a file without the markers fails now, not after minutes of counting
        table = markdown_table(config_rows(args.configs, () if args.no_reference else REFERENCE_CONFIGS,
                                           count_flops=not args.no_flops))
        if args.update:
            update_table_in(args.update, table)
    print(table, end='')


if __name__ == '__main__':
    main()
