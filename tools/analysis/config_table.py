"""The config zoo tables, as Markdown: every segmentation config under configs/ with its head, backbone,
data set, crop, schedule, parameters and FLOPs at the crop (FFTs counted), plus mmseg's UperNet Swin-T
for reference; or (--task detection) every detection config with its detector, backbone, training
scales, schedule, parameters and FLOPs at 1280x800, plus mmdet's Swin-T and PVTv2-b2 in the same detectors.

    python tools/analysis/config_table.py                     # print the table (a few minutes on 2 cores)
    python tools/analysis/config_table.py --update README.md  # rewrite the README's table in place
    python tools/analysis/config_table.py --no-flops          # parameters only, in seconds
    python tools/analysis/config_table.py --task detection --configs configs/retinanet \\
        --update configs/retinanet/README.md                  # the RetinaNet table (and configs/mask_rcnn)
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer, registers GFNetH)

import argparse

from gfnet_seg.analysis.config_table import (DETECTION_REFERENCES, REFERENCE_CONFIGS, TASKS, config_rows,
                                             markdown_table, table_in, update_table_in)
from gfnet_seg.fileio import exit_on_error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--configs', default='configs', help='folder of configs (default: configs)')
    parser.add_argument('--task', choices=TASKS, default='segmentation',
                        help='which configs: segmentation (mmseg) or detection (configs/retinanet, configs/mask_rcnn)')
    parser.add_argument('--no-flops', action='store_true', help='leave the FLOPs column empty (fast)')
    references = sorted({ref for refs in DETECTION_REFERENCES.values() for ref in refs})
    parser.add_argument('--no-reference', action='store_true',
                        help=f'leave out {", ".join(REFERENCE_CONFIGS)} (detection: {", ".join(references)})')
    parser.add_argument('--update', metavar='README', help='replace the table between the marker comments of this file')
    args = parser.parse_args(argv)
    with exit_on_error((ValueError, FileNotFoundError)):
        if args.update:
            table_in(args.update)  # a file without the markers fails now, not after minutes of counting
        table = markdown_table(config_rows(args.configs, () if args.no_reference else None,
                                           count_flops=not args.no_flops, task=args.task))
        if args.update:
            update_table_in(args.update, table)
    print(table, end='')


if __name__ == '__main__':
    main()
