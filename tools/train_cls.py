"""Train or evaluate a GFNet on ImageNet (or a transfer data set); flags as in the official main.py.

    python tools/train_cls.py --arch gfnet-h-ti --data-path data/imagenet --output_dir work_dirs/gfnet-h-ti
    bash tools/dist_train_cls.sh gfnet-h-ti 8 --data-path data/imagenet --output_dir work_dirs/gfnet-h-ti
    python tools/train_cls.py --arch gfnet-h-ti --eval --resume checkpoints/gfnet-h-ti.pth --data-path data/imagenet
"""
from gfnet_seg.classification import cli

if __name__ == '__main__':
    cli()
