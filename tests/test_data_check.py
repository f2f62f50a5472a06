"""Data set mistakes are found before training, each named in one line, and the images people
actually have (grayscale, RGBA, 16-bit, CMYK, EXIF-rotated, palette annotations) load as the
model needs them or are refused naming the file."""
import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmseg.datasets import ADE20KDataset
from PIL import Image, ImageOps

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


# The loading steps of mmseg's ADE20K pipelines: the data check decodes files as they do.
LOADING = [dict(type='mmseg.LoadImageFromFile'), dict(type='mmseg.LoadAnnotations', reduce_zero_label=True)]


def dataset(root, img_suffix='.jpg'):
    return ADE20KDataset(data_root=str(root), data_prefix=dict(img_path='images/training',
                                                                seg_map_path='annotations/training'),
                         img_suffix=img_suffix, pipeline=LOADING, serialize_data=False)


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


# A smooth colour image (JPEG keeps it within a few levels) and its labels, 16 x 24 pixels.
HEIGHT, WIDTH = 16, 24
ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
PICTURE = np.stack([40 + 8 * xs, 60 + 10 * ys, np.full_like(xs, 150)], axis=-1).astype(np.uint8)
LABELS = np.where(xs < WIDTH // 2, 3, 7).astype(np.uint8)


def save_image(path, kind):
    """``PICTURE`` as the kind of file people have; returns the RGB image the model should get."""
    gray = np.asarray(Image.fromarray(PICTURE).convert('L'))
    if kind == 'gray':
        Image.fromarray(gray).save(path)
        return np.repeat(gray[..., None], 3, axis=2)
    if kind == 'rgba':
        Image.fromarray(np.dstack([PICTURE, np.full((HEIGHT, WIDTH), 90, np.uint8)])).save(path)
    elif kind == '16bit':  # 16 bits per channel: OpenCV keeps the high byte
        cv2.imwrite(str(path), PICTURE[..., ::-1].astype(np.uint16) * 257)
    elif kind == 'cmyk':
        Image.fromarray(PICTURE).convert('CMYK').save(path)
    elif kind == 'palette':
        Image.fromarray(PICTURE).convert('P').save(path)
        return np.asarray(Image.open(path).convert('RGB'))
    else:
        Image.fromarray(PICTURE).save(path)
    return PICTURE


def one_sample(root, image_name, label):
    for sub in ('images/training', 'annotations/training'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(label).save(root / 'annotations/training/x.png')
    return root / 'images/training' / image_name


@pytest.mark.parametrize('kind, name', [('gray', 'x.jpg'), ('gray', 'x.png'), ('rgba', 'x.png'), ('16bit', 'x.png'),
                                        ('cmyk', 'x.jpg'), ('palette', 'x.png')])
def test_real_world_images_load_as_three_channels(tmp_path, kind, name):
    image_path = one_sample(tmp_path, name, LABELS)
    expected = save_image(image_path, kind)
    data = dataset(tmp_path, img_suffix=name[1:])
    assert check_segmentation_dataset(data) == 1
    sample = data[0]
    image, label = sample['img'], sample['gt_seg_map']
    assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
    # BGR, as OpenCV decodes; within JPEG's and CMYK conversion's round-off of the picture
    assert np.abs(image[..., ::-1].astype(int) - expected).mean() < 3, kind
    assert np.array_equal(label, LABELS - 1)  # reduce_zero_label


def test_exif_rotated_image_and_its_annotation_stay_aligned(tmp_path):
    """The rule: an image is used as displayed, its EXIF orientation applied (as OpenCV, and so
    mmseg, loads it); the annotation must be drawn on that upright image. One drawn on the stored,
    unrotated pixels of a non-square image is refused, naming both sizes."""
    stored = np.full((HEIGHT, WIDTH, 3), 30, np.uint8)
    stored[:8, :8] = 220  # a bright corner, to find after the rotation
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write it
    image = tmp_path / 'images/training/x.jpg'
    one_sample(tmp_path, 'x.jpg', LABELS)
    Image.fromarray(stored).save(image, exif=exif, quality=95)
    # Oracle: Pillow's own EXIF transpose gives the upright image; annotate its bright pixels.
    upright = np.asarray(ImageOps.exif_transpose(Image.open(image)).convert('L'))
    assert upright.shape == (WIDTH, HEIGHT)
    Image.fromarray(np.where(upright > 128, 2, 1).astype(np.uint8)).save(tmp_path / 'annotations/training/x.png')
    data = dataset(tmp_path)
    assert check_segmentation_dataset(data) == 1
    sample = data[0]
    assert np.array_equal(sample['gt_seg_map'] == 1, sample['img'].mean(axis=2) > 128)

    Image.fromarray(LABELS).save(tmp_path / 'annotations/training/x.png')  # drawn on the stored pixels
    with pytest.raises(DataCheckError, match=rf'annotation \S+x.png is {WIDTH}x{HEIGHT} \(width x height\) but its '
                                             rf'image \S+x.jpg is {HEIGHT}x{WIDTH} as loaded \(after any EXIF rotation\)'):
        check_segmentation_dataset(data)


def test_palette_annotation_gives_its_indices(tmp_path):
    """A palette PNG (as ADE20K's and Pascal VOC's tools save them) holds class indices, shown in
    colours that are not the indices: the check reads the indices, as LoadAnnotations does."""
    image_path = one_sample(tmp_path, 'x.jpg', LABELS)
    save_image(image_path, 'rgb')
    palette = Image.fromarray(LABELS, mode='P')
    palette.putpalette([channel for index in range(256) for channel in (255 - index, 200, index)])
    palette.save(tmp_path / 'annotations/training/x.png')
    data = dataset(tmp_path)
    assert check_segmentation_dataset(data) == 1
    assert np.array_equal(data[0]['gt_seg_map'], LABELS - 1)


def test_rgb_colour_map_annotation_is_refused(tmp_path):
    image_path = one_sample(tmp_path, 'x.jpg', LABELS)
    save_image(image_path, 'rgb')
    Image.fromarray(np.repeat(LABELS[..., None], 3, axis=2)).save(tmp_path / 'annotations/training/x.png')
    with pytest.raises(DataCheckError, match=r'annotation \S+x.png has 3 channels: labels must be single-channel '
                                             r'class indices \(a grayscale or palette PNG\), not an RGB colour map'):
        check_segmentation_dataset(dataset(tmp_path))


def test_annotation_of_another_size_names_both_files(tmp_path):
    image_path = one_sample(tmp_path, 'x.jpg', LABELS[:, :20])
    save_image(image_path, 'rgb')
    with pytest.raises(DataCheckError, match=rf'annotation \S+annotations/training/x.png is 20x{HEIGHT} \(width x '
                                             rf'height\) but its image \S+images/training/x.jpg is {WIDTH}x{HEIGHT}'):
        check_segmentation_dataset(dataset(tmp_path))


def test_image_loaded_without_three_channels_is_refused(tmp_path):
    image_path = one_sample(tmp_path, 'x.png', LABELS)
    save_image(image_path, 'rgba')
    data = ADE20KDataset(data_root=str(tmp_path), data_prefix=dict(img_path='images/training',
                                                                   seg_map_path='annotations/training'),
                         img_suffix='.png', serialize_data=False,
                         pipeline=[dict(type='mmseg.LoadImageFromFile', color_type='unchanged'), LOADING[1]])
    with pytest.raises(DataCheckError, match=r"image \S+x.png loads with 4 channels, the model takes 3: .*"
                                             r"color_type='color'"):
        check_segmentation_dataset(data)
