"""Session fixtures: a generated ImageNet-layout folder and one real CLI training run."""
import os
import subprocess

import pytest

from cls_utils import EASY_RECIPE, TINY_MODEL, make_image_folder


@pytest.fixture(scope='session')
def image_data(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('imagenet_layout'))


@pytest.fixture(scope='session')
def cli_run(tmp_path_factory, image_data, repo_root, python):
    """``tools/train_cls.py`` run for real (subprocess): 4 epochs of the tiny model."""
    output_dir = str(tmp_path_factory.mktemp('cli_run'))
    cmd = [python, os.path.join(repo_root, 'tools', 'train_cls.py'), *TINY_MODEL, *EASY_RECIPE,
           '--data-path', image_data, '--output_dir', output_dir, '--epochs', '4', '--batch-size', '16']
    result = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output_dir, result.stdout
