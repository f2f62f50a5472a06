"""Generate a small, learnable segmentation data set in the ADE20K layout (see
gfnet_seg/datasets/synthetic.py for what is in it).

    python tools/dataset_converters/make_synthetic_ade20k.py --out data/ade/synthetic
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer)

import argparse

from gfnet_seg.datasets import CLASSES, make_synthetic_ade20k


def parse_args():
    parser = argparse.ArgumentParser(description='Write a synthetic data set in the ADE20K layout')
    parser.add_argument('--out', default='data/ade/synthetic', help='data set root')
    parser.add_argument('--num-train', type=int, default=200, help='training images')
    parser.add_argument('--num-val', type=int, default=40, help='validation images')
    parser.add_argument('--size', type=int, default=128, help='image height (width: size to 1.5 x size)')
    parser.add_argument('--seed', type=int, default=0, help='random seed; same seed, same files')
    return parser.parse_args()


def main():
    args = parse_args()
    counts = make_synthetic_ade20k(args.out, args.num_train, args.num_val, args.size, args.seed)
    print(f"{args.out}: {counts['training']} training and {counts['validation']} validation images, "
          f"{len(CLASSES)} classes: {', '.join(CLASSES)}")


if __name__ == '__main__':
    main()
