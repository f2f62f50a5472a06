"""tools/train.py, tools/test.py and tools/inference.py run as a user runs them, on the synthetic
data set: training learns, the reported mIoU is the mIoU of the saved predictions, and the
overlay is the prediction painted over the image."""
import glob
import os.path as osp

import cv2
import numpy as np

from gfnet_seg.datasets import CLASSES, PALETTE, chance_miou, class_pixel_counts

from tool_utils import CONFIG, TINY_MODEL, annotation_dir, as_flags, miou_of_maps, run_tool


def test_training_beats_chance(synthetic_root, tested):
    chance = chance_miou(class_pixel_counts(annotation_dir(synthetic_root), len(CLASSES)))['chance']
    assert tested.metrics['mIoU'] > 100 * chance + 25, (tested.metrics, chance)


def test_reported_miou_is_that_of_the_saved_maps(synthetic_root, tested):
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(annotation_dir(synthetic_root), '*.png')))
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(str(tested.out), '*.png'))) == names
    recomputed = miou_of_maps(str(tested.out), annotation_dir(synthetic_root), len(CLASSES))
    assert abs(recomputed - tested.metrics['mIoU']) < 0.01  # the json rounds to 2 decimals


def test_show_dir_paints_every_image(synthetic_root, tested):
    painted = glob.glob(osp.join(str(tested.show_dir), '**', '*.png'), recursive=True)
    assert len(painted) == len(glob.glob(osp.join(annotation_dir(synthetic_root), '*.png')))


def test_inference_overlay_is_the_prediction_over_the_image(tmp_path, synthetic_root, trained, tested):
    """The overlay has the image's size, odd or not, and is the image blended half and half with
    the palette colour of the class ``tools/test.py`` predicted at each pixel."""
    name = 'ADE_val_00000002'
    image_path = osp.join(str(synthetic_root), 'images', 'validation', name + '.jpg')
    image = cv2.imread(image_path)[..., ::-1].astype(np.float64)
    assert image.shape[1] % 32  # a width the model's stride does not divide
    out = tmp_path / 'overlay.png'
    run_tool('inference.py', image_path, CONFIG, trained.checkpoint, '--out', out, *as_flags(TINY_MODEL))

    overlay = cv2.imread(str(out))[..., ::-1].astype(np.float64)
    assert overlay.shape == image.shape
    labels = cv2.imread(osp.join(str(tested.out), name + '.png'), cv2.IMREAD_UNCHANGED)
    prediction = labels.astype(np.int64) - 1  # saved in the annotations' convention, class + 1
    expected = 0.5 * image + 0.5 * np.array(PALETTE, np.float64)[prediction]
    assert np.abs(overlay - expected).max() <= 1  # uint8 truncation
