"""Evaluate a checkpoint on a config's test set, as mmseg's and mmdet's tools/test.py (mIoU for a
segmentation config, COCO box and mask mAP for a detection one).

    python tools/test.py configs/sem_fpn/fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512.py work_dirs/.../iter_80000.pth
    python tools/test.py configs/mask_rcnn/mask-rcnn_gfnet-h-ti_fpn_1x_coco.py work_dirs/.../epoch_12.pth
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer, registers GFNetH)

import argparse
import os

from mmengine.config import DictAction

from gfnet_seg.apis import LAUNCHERS, exit_on_error, load_config, setup_test, test


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a segmentor or a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir for logs; the metrics are dumped there as json')
    parser.add_argument('--out', help='where to keep the predictions for offline evaluation: a folder of maps '
                        '(segmentation) or a .pkl file (detection)')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='the dir to save images with the predictions painted on them')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value pairs')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    with exit_on_error():
        cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
        cfg = setup_test(cfg, args.checkpoint, out=args.out, show=args.show, show_dir=args.show_dir,
                         wait_time=args.wait_time, tta=args.tta)
        test(cfg)


if __name__ == '__main__':
    main()
