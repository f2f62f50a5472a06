"""``make demo``: generate the synthetic data set, train GFNet-H-Ti Semantic FPN on it for a few
hundred iterations, evaluate mIoU against chance, and write an overlay picture."""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer, registers GFNetH)

import argparse

from mmengine.config import DictAction

from gfnet_seg.apis import exit_on_error
from gfnet_seg.demo import DEMO_CONFIG, run_demo


def parse_args():
    parser = argparse.ArgumentParser(description='Train and evaluate GFNet-H on synthetic data')
    parser.add_argument('--config', default=DEMO_CONFIG, help='config to train')
    parser.add_argument('--data-root', default='data/ade/synthetic', help='where the data set is generated')
    parser.add_argument('--work-dir', help='the dir for logs, checkpoint and overlay '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch compute threads (default 1: on 2 cores the other one feeds '
                        'the data loader)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, e.g. train_cfg.max_iters=50')
    return parser.parse_args()


def main():
    args = parse_args()
    with exit_on_error():
        run_demo(args.config, args.data_root, args.work_dir, args.cfg_options, num_threads=args.threads)


if __name__ == '__main__':
    main()
