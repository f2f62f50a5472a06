"""The generated COCO-layout set is what COCO readers expect (pycocotools, mmdet's CocoDataset) and has
what real COCO files have: non-contiguous category ids, images of several sizes, images without
objects, a crowd region; its polygons, boxes and areas agree, and a seed gives the same files."""
import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from gfnet_seg.datasets import METAINFO, make_synthetic_coco
from gfnet_seg.datasets.synthetic import BASE_COLOURS
from gfnet_seg.datasets.synthetic_coco import CATEGORY_IDS, COCO_CLASSES, rle_encode

SIZE = 64


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    summary = make_synthetic_coco(str(root), num_train=8, num_val=6, size=SIZE, seed=0, progress=False)
    return root, summary


def load(root, split):
    with open(root / 'annotations' / f'instances_{split}.json') as f:
        return json.load(f)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_layout_loads_with_pycocotools_and_images_match(coco_root, split):
    import cv2
    root, summary = coco_root
    coco = COCO(str(root / 'annotations' / f'instances_{split}.json'))
    assert sorted(coco.getCatIds()) == [1, 2, 3, 5] == list(CATEGORY_IDS)
    assert [coco.cats[i]['name'] for i in CATEGORY_IDS] == list(COCO_CLASSES) == list(METAINFO['classes'])
    assert len(METAINFO['palette']) == len(METAINFO['classes'])
    images = coco.dataset['images']
    assert len(images) == summary[split]['images'] == (8 if split == 'train' else 6)
    assert len(coco.dataset['annotations']) == summary[split]['annotations'] > 0
    sizes = set()
    for image in images:
        decoded = cv2.imread(str(root / split / image['file_name']))
        assert decoded.shape[:2] == (image['height'], image['width'])
        assert 0.75 * SIZE <= image['height'] <= 1.25 * SIZE and 0.75 * SIZE <= image['width'] <= 1.25 * SIZE
        sizes.add((image['height'], image['width']))
    assert len(sizes) > 1 and any(h != w for h, w in sizes)
    empty = [image['id'] for image in images if not coco.getAnnIds(imgIds=[image['id']])]
    assert len(empty) == summary[split]['empty_images'] >= 1
    crowd = [ann for ann in coco.dataset['annotations'] if ann['iscrowd']]
    assert len(crowd) == summary[split]['crowd'] == (1 if split == 'train' else 0)
    for ann in crowd:
        assert isinstance(ann['segmentation'], dict) and ann['segmentation']['size'] == [
            coco.imgs[ann['image_id']]['height'], coco.imgs[ann['image_id']]['width']]
    ids = [ann['id'] for ann in coco.dataset['annotations']]
    assert len(set(ids)) == len(ids) and min(ids) >= 1


@pytest.mark.parametrize('split', ['train', 'val'])
def test_masks_areas_and_boxes_agree(coco_root, split):
    root, _ = coco_root
    data = load(root, split)
    images = {image['id']: image for image in data['images']}
    for ann in data['annotations']:
        image = images[ann['image_id']]
        h, w = image['height'], image['width']
        if ann['iscrowd']:
            rle = mask_utils.frPyObjects(ann['segmentation'], h, w)
            assert mask_utils.area(rle) == ann['area']
            np.testing.assert_allclose(mask_utils.toBbox(rle), ann['bbox'])
            continue
        polygon = np.array(ann['segmentation'][0]).reshape(-1, 2)
        assert len(polygon) >= 3
        low, high = polygon.min(0), polygon.max(0)
        np.testing.assert_allclose(ann['bbox'], [*low, *(high - low)], atol=0.011)
        assert (low >= 0).all() and high[0] <= w and high[1] <= h
        rle = mask_utils.merge(mask_utils.frPyObjects(ann['segmentation'], h, w))
        assert abs(float(mask_utils.area(rle)) - ann['area']) <= 0.1 * ann['area'] + 3, ann
        # The rasterised mask lies within the box; sharp tips (of stars) may cover no pixel.
        x, y, bw, bh = mask_utils.toBbox(rle)
        bx, by, bbw, bbh = ann['bbox']
        assert x >= bx - 1 and y >= by - 1 and x + bw <= bx + bbw + 1 and y + bh <= by + bbh + 1, ann
        assert bw >= 0.85 * bbw - 1 and bh >= 0.85 * bbh - 1, ann


def test_objects_are_painted_in_their_category_colour(coco_root):
    """In images of one object the pixels inside the polygon have its category's colour."""
    import cv2
    root, _ = coco_root
    checked = 0
    for split in ('train', 'val'):
        data = load(root, split)
        for image in data['images']:
            anns = [a for a in data['annotations'] if a['image_id'] == image['id']]
            if len(anns) != 1 or anns[0]['iscrowd']:
                continue
            rgb = cv2.imread(str(root / split / image['file_name']))[..., ::-1].astype(float)
            mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
                anns[0]['segmentation'], image['height'], image['width']))).astype(bool)
            mean = rgb[mask].mean(0)
            colours = np.array(BASE_COLOURS[1:5], float)
            nearest = np.argmax(colours @ mean / np.linalg.norm(colours, axis=1) / np.linalg.norm(mean))
            assert CATEGORY_IDS[nearest] == anns[0]['category_id'], image
            checked += 1
    assert checked >= 1


def test_same_seed_same_files(tmp_path):
    make_synthetic_coco(str(tmp_path / 'a'), 3, 1, SIZE, seed=1, progress=False)
    make_synthetic_coco(str(tmp_path / 'b'), 4, 1, SIZE, seed=1, progress=False)  # one image more
    make_synthetic_coco(str(tmp_path / 'c'), 3, 1, SIZE, seed=2, progress=False)
    for name in os.listdir(tmp_path / 'a' / 'train'):
        assert (tmp_path / 'a' / 'train' / name).read_bytes() == (tmp_path / 'b' / 'train' / name).read_bytes()
    a, b, c = (load(tmp_path / x, 'train') for x in 'abc')
    assert a['annotations'] == [ann for ann in b['annotations'] if ann['image_id'] <= 3]
    assert a['images'] != c['images'] or a['annotations'] != c['annotations']
    assert load(tmp_path / 'a', 'val') == load(tmp_path / 'b', 'val')


def test_rle_encoding_matches_pycocotools():
    rng = np.random.default_rng(0)
    for first in (False, True):
        mask = rng.random((7, 5)) > 0.5
        mask[0, 0] = first
        rle = rle_encode(mask)
        decoded = mask_utils.decode(mask_utils.frPyObjects(rle, 7, 5))
        np.testing.assert_array_equal(decoded.astype(bool), mask)


def test_command_line_tool(tmp_path, monkeypatch, capsys, repo_root):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_coco_tool', os.path.join(repo_root, 'tools/dataset_converters/make_synthetic_coco.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'synthetic'
    monkeypatch.setattr('sys.argv', ['make_synthetic_coco.py', '--out', str(out), '--num-train', '2',
                                     '--num-val', '1', '--size', '48'])
    tool.main()
    assert sorted(os.listdir(out / 'annotations')) == ['instances_train.json', 'instances_val.json']
    assert len(os.listdir(out / 'train')) == 2 and len(os.listdir(out / 'val')) == 1
    assert 'categories: 1 ellipse, 2 rectangle, 3 triangle, 5 star' in capsys.readouterr().out


def test_mmdet_coco_dataset_reads_it(coco_root):
    from mmdet.datasets import CocoDataset
    root, summary = coco_root
    data = load(root, 'train')
    dataset = CocoDataset(data_root=str(root), ann_file='annotations/instances_train.json',
                          data_prefix=dict(img='train/'), metainfo=METAINFO, test_mode=False,
                          filter_cfg=dict(filter_empty_gt=True, min_size=1), pipeline=[])
    assert len(dataset) == summary['train']['images'] - summary['train']['empty_images']
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    instances = [inst for info in infos for inst in info['instances']]
    assert len(instances) == summary['train']['annotations']
    assert sum(inst['ignore_flag'] for inst in instances) == summary['train']['crowd'] == 1
    by_box = {tuple(np.round(a['bbox'][:2], 2)): CATEGORY_IDS.index(a['category_id']) for a in data['annotations']}
    assert all(by_box[tuple(np.round(inst['bbox'][:2], 2))] == inst['bbox_label'] for inst in instances)
    assert {inst['bbox_label'] for inst in instances} <= set(range(len(COCO_CLASSES)))
    assert all(os.path.isfile(info['img_path']) for info in infos)
