"""Train a segmentor or a detector from a config, as mmseg's and mmdet's tools/train.py (the
config's default_scope decides which).

    python tools/train.py configs/sem_fpn/fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512.py
    bash tools/dist_train.sh configs/sem_fpn/fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512.py 8
    bash tools/dist_train.sh configs/mask_rcnn/mask-rcnn_gfnet-h-ti_fpn_1x_coco.py 8
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer, registers GFNetH)

import argparse
import os

from mmengine.config import DictAction

from gfnet_seg.apis import LAUNCHERS, exit_on_error, load_config, setup_train, train


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor or a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--amp', action='store_true', help='enable automatic-mixed-precision training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value pairs (e.g. '
                        'model.decode_head.norm_cfg.type=BN train_cfg.max_iters=1000)')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    with exit_on_error():
        cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
        train(setup_train(cfg, resume=args.resume, amp=args.amp))


if __name__ == '__main__':
    main()
