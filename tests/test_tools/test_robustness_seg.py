"""``tools/analysis/robustness.py seg`` on the synthetic set and the checkpoint of ``tools/train.py``:
its clean mIoU is ``tools/test.py``'s, corruptions happen before the pipeline's resize, and it
writes the CSV and the picture."""
import csv

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from tool_utils import CONFIG, REPO_ROOT, TINY_MODEL, as_flags, data_options, run_tool

pytest.importorskip('skimage')


@pytest.fixture(scope='module')
def robustness_run(tmp_path_factory, synthetic_root, trained):
    out = tmp_path_factory.mktemp('seg_robustness')
    result = run_tool('analysis/robustness.py', 'seg', CONFIG, trained.checkpoint, '--out', out / 'results',
                      '--work-dir', out / 'work', '--corruptions', 'gaussian_noise', 'fog', '--severities', '1', '5',
                      '--eps', '2', '--steps', '2', '--step-size', '1', '--show-severity', '5',
                      *as_flags({**TINY_MODEL, **data_options(synthetic_root)}))
    with open(out / 'results' / 'seg_robustness.csv') as f:
        rows = list(csv.DictReader(f))
    return rows, out / 'results', result.stdout


def test_clean_miou_is_that_of_tools_test(robustness_run, tested):
    rows, _, _ = robustness_run
    assert rows[0]['test'] == 'clean'
    for metric in ('mIoU', 'mAcc', 'aAcc'):
        assert float(rows[0][metric]) == pytest.approx(tested.metrics[metric], abs=1e-4), metric  # float32 json


def test_corruptions_and_attack_are_reported(robustness_run):
    rows, _, stdout = robustness_run
    assert [(row['test'], row['severity']) for row in rows] == [
        ('clean', ''), ('gaussian_noise', '1'), ('gaussian_noise', '5'), ('fog', '1'), ('fog', '5'), ('pgd', '')]
    scores = {(row['test'], row['severity']): float(row['mIoU']) for row in rows}
    assert scores[('gaussian_noise', '5')] < scores[('clean', '')]
    assert scores[('pgd', '')] < scores[('clean', '')]
    assert '| gaussian_noise |' in stdout and 'mIoU (%) by corruption and severity' in stdout


def test_picture_shows_every_setting(robustness_run):
    _, results, _ = robustness_run
    picture = cv2.imread(str(results / 'robustness.png'))
    # clean, 2 corruptions, PGD and the ground truth: one band of 5 columns, images over predictions
    assert picture is not None and picture.shape[1] > 2 * picture.shape[0]


def test_corruption_comes_before_the_resize(synthetic_root):
    """The test pipeline with the corruption inserted gives the resized corrupted image, not the
    corrupted resized one."""
    from mmcv.transforms import Compose
    from mmseg.registry import TRANSFORMS

    from gfnet_seg.robustness.segmentation import ImageCorruption, corrupted_pipeline
    pipeline = Config.fromfile(f'{REPO_ROOT}/{CONFIG}').test_pipeline
    corrupted = corrupted_pipeline(pipeline, 'glass_blur', 3, seed=1)
    assert [step['type'] for step in corrupted[:3]] == ['LoadImageFromFile', 'ImageCorruption', 'Resize']
    image_path = str(synthetic_root / 'images' / 'validation' / 'ADE_val_00000002.jpg')
    with DefaultScope.overwrite_default_scope('mmseg'):  # as tools/test.py builds them
        load, corrupt, resize = (TRANSFORMS.build(step) for step in corrupted[:3])
        composed = Compose([TRANSFORMS.build(step) for step in corrupted[:3]])({'img_path': image_path})['img']
    assert isinstance(corrupt, ImageCorruption)
    expected = resize(corrupt(load({'img_path': image_path})))['img']
    np.testing.assert_array_equal(composed, expected)
    after = corrupt(resize(load({'img_path': image_path})))['img']
    assert composed.shape == after.shape and not np.array_equal(composed, after)
