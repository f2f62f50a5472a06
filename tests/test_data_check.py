"""Data set mistakes are found before training, each named in one line."""
import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmseg.datasets import ADE20KDataset

from gfnet_seg.engine import DataCheckError, check_data_config, check_segmentation_dataset


def make_ade(root, count=3, label_value=5):
    """A tiny ADE20K-layout folder: images/training/*.jpg with annotations/training/*.png."""
    for sub in ('images/training', 'annotations/training'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(root / f'images/training/ADE_train_{i:08d}.jpg'), np.full((16, 16, 3), 80, np.uint8))
        label = np.full((16, 16), label_value, np.uint8)
        label[0] = 0  # "other", ignored with reduce_zero_label
        cv2.imwrite(str(root / f'annotations/training/ADE_train_{i:08d}.png'), label)
    return root


def dataset(root):
    return ADE20KDataset(data_root=str(root), data_prefix=dict(img_path='images/training',
                                                                seg_map_path='annotations/training'),
                         pipeline=[], serialize_data=False)


def test_sound_data_set_passes(tmp_path):
    assert check_segmentation_dataset(dataset(make_ade(tmp_path)), 'train set') == 3


def test_image_without_annotation(tmp_path):
    root = make_ade(tmp_path)
    (root / 'annotations/training/ADE_train_00000001.png').unlink()
    with pytest.raises(DataCheckError, match=r'ADE_train_00000001.jpg has no annotation'):
        check_segmentation_dataset(dataset(root))


def test_annotation_without_image(tmp_path):
    root = make_ade(tmp_path)
    (root / 'images/training/ADE_train_00000002.jpg').unlink()
    with pytest.raises(DataCheckError, match=r'annotation .*ADE_train_00000002.png has no image'):
        check_segmentation_dataset(dataset(root))


def test_label_outside_classes(tmp_path):
    root = make_ade(tmp_path)
    bad = np.full((16, 16), 200, np.uint8)
    cv2.imwrite(str(root / 'annotations/training/ADE_train_00000001.png'), bad)
    with pytest.raises(DataCheckError, match=r'ADE_train_00000001.png has label values \[200\]'):
        check_segmentation_dataset(dataset(root))
    # 150 is the last class before reduce_zero_label and 255 the ignore index: both valid.
    for value in (150, 255):
        cv2.imwrite(str(root / 'annotations/training/ADE_train_00000001.png'), np.full((16, 16), value, np.uint8))
        assert check_segmentation_dataset(dataset(root)) == 3


def test_processes_share_the_reading(tmp_path):
    """Each of two processes reads every other sample: only the one holding the bad file fails."""
    root = make_ade(tmp_path, count=5)
    (root / 'images/training/ADE_train_00000003.jpg').write_bytes(b'not a jpeg at all')
    assert check_segmentation_dataset(dataset(root), rank=0, world_size=2) == 3
    with pytest.raises(DataCheckError, match=r'ADE_train_00000003.jpg'):
        check_segmentation_dataset(dataset(root), rank=1, world_size=2)


def test_corrupt_image(tmp_path):
    root = make_ade(tmp_path)
    (root / 'images/training/ADE_train_00000000.jpg').write_bytes(b'not a jpeg at all')
    with pytest.raises(DataCheckError, match=r'corrupt or unreadable image file .*ADE_train_00000000.jpg'):
        check_segmentation_dataset(dataset(root))


def test_empty_image_folder_in_built_dataset(tmp_path):
    root = make_ade(tmp_path, count=0)
    with pytest.raises(DataCheckError, match=r"no images with suffix '.jpg' in .*images/training"):
        check_segmentation_dataset(dataset(root))


def config(root):
    return Config(dict(train_dataloader=dict(dataset=dict(
        type='RepeatDataset', times=2,
        dataset=dict(type='ADE20KDataset', data_root=str(root),
                     data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'))))))


def test_config_check_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataCheckError, match=r'train_dataloader: image folder .*missing/images/training does not exist'):
        check_data_config(config(tmp_path / 'missing'))
    root = make_ade(tmp_path / 'empty', count=0)
    with pytest.raises(DataCheckError, match=r'image folder .*images/training is empty'):
        check_data_config(config(root))
    check_data_config(config(make_ade(tmp_path / 'good')))
