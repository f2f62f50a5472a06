"""Session fixtures: the generated ImageNet-layout folder and a tiny GFNet-H trained on it."""
import os
from types import SimpleNamespace

import pytest

from test_classification.cls_utils import EASY_RECIPE, EMBED_DIMS, IMAGE_SIZE, TINY_MODEL, make_image_folder


@pytest.fixture(scope='session')
def image_data(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('imagenet_layout'))


@pytest.fixture(scope='session')
def trained_classifier(tmp_path_factory, image_data):
    """``train_cls.py``'s training, in this process: 3 epochs of the tiny model (~90% top-1)."""
    from gfnet_seg.classification.trainer import main
    output_dir = str(tmp_path_factory.mktemp('cls_run'))
    stats = main([*TINY_MODEL, *EASY_RECIPE, '--data-path', image_data, '--output_dir', output_dir,
                  '--epochs', '3', '--batch-size', '16', '--no-check-images'])
    return SimpleNamespace(checkpoint=os.path.join(output_dir, 'checkpoint.pth'), data=image_data, stats=stats,
                           embed_dims=EMBED_DIMS, input_size=IMAGE_SIZE, tiny_model=TINY_MODEL)
