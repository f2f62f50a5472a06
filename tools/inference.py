"""Segment one image, or detect objects in it, and write the prediction drawn over it.

    python tools/inference.py demo.jpg CONFIG CHECKPOINT --out overlay.png
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer, registers GFNetH)

import argparse

from mmengine.config import DictAction

from gfnet_seg.apis import exit_on_error, inference_overlay


def parse_args():
    parser = argparse.ArgumentParser(description='Segment an image (or detect in it) and save the overlay')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', default='overlay.png', help='where to write the overlay picture')
    parser.add_argument('--device', help='device, e.g. cuda:0 or cpu (default: cuda:0 if available)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the painted prediction, in (0, 1] (segmentation)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw the boxes and masks scoring at least this (detection)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value pairs')
    return parser.parse_args()


def main():
    args = parse_args()
    with exit_on_error():
        inference_overlay(args.image, args.config, args.checkpoint, args.out, device=args.device,
                          opacity=args.opacity, cfg_options=args.cfg_options, score_thr=args.score_thr)
    print(f'overlay written to {args.out}')


if __name__ == '__main__':
    main()
