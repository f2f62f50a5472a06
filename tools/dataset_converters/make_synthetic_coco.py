"""Generate a small, learnable detection and instance segmentation data set in the COCO layout (see
gfnet_seg/datasets/synthetic_coco.py for what is in it).

    python tools/dataset_converters/make_synthetic_coco.py --out data/coco/synthetic
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer)

import argparse

from gfnet_seg.datasets.synthetic_coco import CATEGORY_IDS, COCO_CLASSES, make_synthetic_coco


def parse_args():
    parser = argparse.ArgumentParser(description='Write a synthetic data set in the COCO layout')
    parser.add_argument('--out', default='data/coco/synthetic', help='data set root')
    parser.add_argument('--num-train', type=int, default=48, help='training images')
    parser.add_argument('--num-val', type=int, default=12, help='validation images')
    parser.add_argument('--size', type=int, default=128,
                        help='nominal image side (heights and widths: 0.75 to 1.25 x size)')
    parser.add_argument('--seed', type=int, default=0, help='random seed; same seed, same files')
    return parser.parse_args()


def main():
    args = parse_args()
    summary = make_synthetic_coco(args.out, args.num_train, args.num_val, args.size, args.seed)
    for split, counts in summary.items():
        print(f"{args.out}/{split}: {counts['images']} images ({counts['empty_images']} without objects), "
              f"{counts['annotations']} annotations ({counts['crowd']} crowd regions)")
    print('categories: ' + ', '.join(f'{i} {name}' for i, name in zip(CATEGORY_IDS, COCO_CLASSES)))


if __name__ == '__main__':
    main()
