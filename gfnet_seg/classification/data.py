"""Data sets, transforms and mixup of the GFNet/DeiT recipe, built from timm's parts."""
import os
from typing import Optional, Tuple

import numpy as np
from PIL import Image, ImageOps
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, Mixup, create_transform
from torch.utils.data import Dataset
from torchvision import datasets, transforms

from ..fileio import first_problem

# Up to this size an image is taken as is (CIFAR): no random resized crop, no eval resize.
SMALL_INPUT = 32


def build_transform(is_train: bool, args):
    """DeiT's transforms: RandAugment, colour jitter and random erasing for training, resize
    to ``input_size / crop_pct`` and centre crop for evaluation."""
    small = args.input_size <= SMALL_INPUT
    if is_train:
        transform = create_transform(
            input_size=args.input_size, is_training=True, no_aug=args.no_aug, color_jitter=args.color_jitter,
            auto_augment=None if args.aa in (None, '', 'none') else args.aa,
            interpolation=args.train_interpolation, re_prob=args.reprob, re_mode=args.remode,
            re_count=args.recount, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD)
        if small and not args.no_aug:  # a random resized crop would destroy 32-pixel images; pad and crop
            transform.transforms[0] = transforms.RandomCrop(args.input_size, padding=4)
        return transform
    return create_transform(input_size=args.input_size, is_training=False, interpolation='bicubic',
                            crop_pct=1.0 if small else args.crop_pct,
                            mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD)


def build_dataset(is_train: bool, args) -> Tuple[Dataset, int]:
    """The train or val split of ``--data-set`` under ``--data-path`` and its number of classes."""
    if not os.path.isdir(args.data_path):
        raise FileNotFoundError(f'--data-path {args.data_path!r} is not a folder')
    transform = build_transform(is_train, args)
    name = args.data_set.upper()
    if name in ('CIFAR10', 'CIFAR100'):
        cifar = datasets.CIFAR10 if name == 'CIFAR10' else datasets.CIFAR100
        try:
            dataset = cifar(args.data_path, train=is_train, transform=transform, download=False)
        except RuntimeError as err:
            folder = 'cifar-10-batches-py' if name == 'CIFAR10' else 'cifar-100-python'
            raise FileNotFoundError(
                f'{name} not found under --data-path {args.data_path}: expected the python version '
                f'extracted there ({folder}/); nothing is downloaded ({err})') from None
        return dataset, len(dataset.classes)
    split = 'train' if is_train else 'val'
    dataset = image_folder(os.path.join(args.data_path, split), transform)
    return dataset, len(dataset.classes)


def image_folder(root: str, transform=None) -> datasets.ImageFolder:
    """``ImageFolder(root)`` with an error that names the folder when it is missing or empty."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f'data folder not found: {root} (expected <split>/<class>/<image> '
                                'under --data-path, as in ImageNet)')
    try:
        return datasets.ImageFolder(root, transform=transform, loader=read_image)
    except FileNotFoundError as err:
        raise FileNotFoundError(f'no images in {root}: expected one sub-folder of images per class '
                                f'({err})') from None


def read_image(path: str) -> Image.Image:
    """An RGB image as it is displayed: grayscale, RGBA, CMYK and palette images converted, a
    16-bit grayscale image scaled to 8 bits (Pillow's conversion would clip it to white) and the
    EXIF orientation applied. A file PIL cannot decode raises an error that names it (PIL's does not)."""
    try:
        with open(path, 'rb') as f:
            image = ImageOps.exif_transpose(Image.open(f))
            if image.mode.startswith('I'):  # 'I;16', 'I': 16-bit grayscale PNGs and TIFFs
                image = Image.fromarray((np.asarray(image, np.float64) / 257).round().clip(0, 255).astype(np.uint8))
            return image.convert('RGB')
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f'cannot read image {path}: {err}') from err


def _image_problem(path: str) -> str:
    """What is wrong with the image file at ``path`` from its header, or '' when nothing is."""
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as err:  # PIL raises many types for bad files
        return f'corrupt or unreadable image file {path} ({type(err).__name__}: {err})'
    return ''


def check_images(dataset: Dataset, name: str, rank: int = 0, world: int = 1, workers: int = 8) -> int:
    """Open the header of every image of an ImageFolder set (this process's share of them) and
    raise ``ValueError`` naming the first bad file, so that it stops the run before training, not
    hours into an epoch. Sets without files (CIFAR) are skipped. Returns the number checked."""
    paths = [path for path, _ in getattr(dataset, 'samples', [])][rank::world]
    problem = first_problem(_image_problem, paths, f'checking {name} images', workers,
                            progress=rank == 0 and len(paths) >= 1000)
    if problem:
        raise ValueError(f'{name}: {problem}')
    return len(paths)


def check_same_classes(train_set: Dataset, val_set: Dataset, data_path: str) -> None:
    """Train and val must name the same classes in the same order, or labels would not match."""
    train_classes, val_classes = list(train_set.classes), list(val_set.classes)
    if train_classes != val_classes:
        only_train = sorted(set(train_classes) - set(val_classes))[:5]
        only_val = sorted(set(val_classes) - set(train_classes))[:5]
        raise ValueError(f'{data_path}: train and val have different classes '
                         f'(only in train: {only_train}, only in val: {only_val})')


def build_mixup(args, num_classes: int) -> Optional[Mixup]:
    """timm's Mixup/CutMix (with label smoothing folded in), or None when both are off."""
    if not (args.mixup > 0 or args.cutmix > 0 or args.cutmix_minmax is not None):
        return None
    return Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, cutmix_minmax=args.cutmix_minmax,
                 prob=args.mixup_prob, switch_prob=args.mixup_switch_prob, mode=args.mixup_mode,
                 label_smoothing=args.smoothing, num_classes=num_classes)
