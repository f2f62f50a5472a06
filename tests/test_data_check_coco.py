"""COCO annotation mistakes are found before training, each named in one line with the file and the
record; what COCO allows (crowd regions, images without objects, boxes only, COCO's two zero-height
boxes) passes; the hook checks mmdet's (wrapped) datasets; the check needs neither mmseg nor mmdet."""
import json
import shutil
import subprocess
import textwrap
from types import SimpleNamespace

import pytest

from gfnet_seg.datasets import METAINFO, make_synthetic_coco
from gfnet_seg.engine import DataCheckError, check_coco_annotations
from gfnet_seg.engine.data_check import DataCheckError as SegDataCheckError


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco_src')
    make_synthetic_coco(str(root), num_train=8, num_val=2, size=48, seed=0, progress=False)
    return root


@pytest.fixture
def coco(source, tmp_path):
    """A fresh copy of the generated set: (root, train annotation data, write function)."""
    root = tmp_path / 'coco'
    shutil.copytree(source, root)
    ann_file = root / 'annotations' / 'instances_train.json'
    data = json.loads(ann_file.read_text())

    def write(new=None):
        ann_file.write_text(json.dumps(data if new is None else new))
        return str(ann_file)
    return root, data, write


def check(root, **kwargs):
    check_coco_annotations(str(root / 'annotations' / 'instances_train.json'), str(root / 'train'), **kwargs)


def first_object(data, image_id=None):
    return next(a for a in data['annotations'] if not a['iscrowd'] and image_id in (None, a['image_id']))


def test_generated_set_passes(source):
    check(source, classes=METAINFO['classes'])
    check_coco_annotations(str(source / 'annotations/instances_val.json'), str(source / 'val'))
    assert DataCheckError is SegDataCheckError  # the segmentation check's error class


def _malformed(root, data):
    (root / 'annotations/instances_train.json').write_text('{\n "images": [],\n "annotations": [,]\n}')
    return 'skip write'


def _set(path, value):
    def corrupt(root, data):
        target = data
        for key in path[:-1]:
            target = target[key(data) if callable(key) else key]
        target[path[-1]] = value
    return corrupt


def _del_key(root, data):
    del data['categories']


def _remove_image(root, data):
    (root / 'train' / '000000000002.jpg').unlink()


def _garble_image(root, data):
    (root / 'train' / '000000000003.jpg').write_bytes(b'not a jpeg')


def _box(change):
    def corrupt(root, data):
        ann = first_object(data)
        ann['bbox'] = change(ann['bbox'], next(i for i in data['images'] if i['id'] == ann['image_id']))
    return corrupt


def _polygon(change):
    def corrupt(root, data):
        ann = first_object(data)
        image = next(i for i in data['images'] if i['id'] == ann['image_id'])
        ann['segmentation'] = [change(ann['segmentation'][0], image)]
    return corrupt


CORRUPTIONS = {
    'malformed JSON': (_malformed, r'malformed JSON at line 3 column 18'),
    'missing top-level key': (_del_key, r"has no top-level 'categories'"),
    'missing image file': (_remove_image, r'image id 2 \(000000000002.jpg\): image file \S+000000000002.jpg '
                                          r'does not exist'),
    'corrupt image file': (_garble_image, r'image id 3 \(000000000003.jpg\): corrupt or unreadable image file'),
    'declared size differs': (_set(('images', 0, 'width'), 999),
                              r'image id 1 \(000000000001.jpg\): image file \S+ is \d+x\d+ .*says 999x'),
    'unknown category': (_set(('annotations', 0, 'category_id'), 4),
                         r'annotation id 1 \(image id 1, 000000000001.jpg\): category id 4 is not among the '
                         r'categories \[1, 2, 3, 5\]'),
    'unknown image id': (_set(('annotations', 1, 'image_id'), 999),
                         r'annotation id 2: image id 999 is not among the images'),
    'zero width': (_box(lambda b, i: [b[0], b[1], 0, b[3]]), r'annotation id 1 .*box .* has zero width'),
    'negative height': (_box(lambda b, i: [b[0], b[1], b[2], -3]), r'annotation id 1 .*has negative width or height'),
    'box outside': (_box(lambda b, i: [i['width'] - b[2] / 2, b[1], b[2], b[3]]),
                    r'annotation id 1 \(image id 1, 000000000001.jpg\): box .* reaches outside the \d+x\d+ image'),
    'box 1.5 px outside': (_box(lambda b, i: [-1.5, b[1], b[2], b[3]]), r'annotation id 1 .*reaches outside'),
    'polygon outside': (_polygon(lambda p, i: [v + (i['width'] if k % 2 == 0 else 0) for k, v in enumerate(p)]),
                        r'annotation id 1 .*polygon 0 reaches outside the \d+x\d+ image'),
    'polygon of 2 points': (_polygon(lambda p, i: p[:4]), r'annotation id 1 .*polygon 0 has 2 points, fewer than 3'),
    'odd polygon': (_polygon(lambda p, i: p[:7]), r'annotation id 1 .*odd number of coordinates'),
    'duplicate annotation id': (_set(('annotations', 1, 'id'), 1), r'annotation id 1 appears twice'),
    'RLE of another size': (_set(('annotations', lambda d: next(
        k for k, a in enumerate(d['annotations']) if a['iscrowd']), 'segmentation', 'size'), [1, 1]),
        r'annotation id \d+ \(image id 8, 000000000008.jpg\): RLE segmentation is of size \[1, 1\]'),
}


@pytest.mark.parametrize('name', list(CORRUPTIONS))
def test_corruption_is_named_in_one_line(coco, name):
    root, data, write = coco
    corrupt, pattern = CORRUPTIONS[name]
    ann_file = str(root / 'annotations' / 'instances_train.json')
    if corrupt(root, data) != 'skip write':
        write()
    with pytest.raises(DataCheckError) as info:
        check(root)
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith(ann_file + ': '), message
    assert __import__('re').search(pattern, message), message


def test_what_coco_allows_passes(coco):
    root, data, write = coco
    assert any(a['iscrowd'] and isinstance(a['segmentation'], dict) for a in data['annotations'])
    with_objects = {a['image_id'] for a in data['annotations']}
    assert any(i['id'] not in with_objects for i in data['images'])  # an image without objects
    ann = first_object(data)
    ann['bbox'][0] = -0.9  # within the 1 pixel of tolerance
    del first_object(data, image_id=2)['segmentation']  # boxes only
    crowd_polygon = dict(first_object(data, image_id=3), id=10_000, iscrowd=1)  # a crowd region as polygons
    # COCO train2017's annotation 918: a zero-height box of area 0 (mmdet skips it)
    degenerate = dict(id=10_001, image_id=4, category_id=1, iscrowd=0, area=0.0, bbox=[10.5, 12.0, 1.03, 0.0],
                      segmentation=[[10.5, 12.0, 10.5, 12.0, 11.53, 12.0, 11.53, 12.0]])
    data['annotations'] += [crowd_polygon, degenerate]
    write()
    check(root, classes=METAINFO['classes'])


def test_first_problem_is_reported(coco):
    root, data, write = coco
    data['annotations'][1]['category_id'] = 4
    data['annotations'][3]['bbox'][2] = -1
    write()
    with pytest.raises(DataCheckError, match=r'annotation id 2 .*category id 4'):
        check(root)


def test_classes_of_the_config_must_be_categories_in_the_file_order(coco):
    root, _, _ = coco
    with pytest.raises(DataCheckError, match=r"has no categories named \['circle'\]"):
        check(root, classes=('circle', 'star'))
    with pytest.raises(DataCheckError, match=r"in the order \['triangle', 'star'\], the config in \['star', 'tri"):
        check(root, classes=('star', 'triangle'))
    check(root, classes=('rectangle', 'star'))  # a subset, in the file's order


def test_processes_share_the_image_reading(coco):
    root, data, write = coco
    (root / 'train' / '000000000004.jpg').write_bytes(b'broken')  # image 4: index 3, rank 1 of 2
    check(root, rank=0, world_size=2)
    with pytest.raises(DataCheckError, match='000000000004.jpg'):
        check(root, rank=1, world_size=2)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(DataCheckError, match=r'annotation file \S+nothing.json does not exist'):
        check_coco_annotations(str(tmp_path / 'nothing.json'), str(tmp_path))


def test_hook_checks_wrapped_mmdet_datasets(coco):
    from mmdet.datasets import CocoDataset
    from mmdet.registry import HOOKS
    from mmengine.dataset import ConcatDataset, RepeatDataset
    root, data, write = coco
    hook = HOOKS.build(dict(type='CocoDataCheckHook'))

    def dataset(split):
        return CocoDataset(data_root=str(root), ann_file=f'annotations/instances_{split}.json',
                           data_prefix=dict(img=f'{split}/'), metainfo=METAINFO, pipeline=[], lazy_init=True)

    train = SimpleNamespace(dataset=ConcatDataset([dataset('train'), dataset('val')]))
    runner = SimpleNamespace(train_dataloader=train, val_loop=object(),
                             val_dataloader=SimpleNamespace(dataset=dataset('val')),
                             test_dataloader=SimpleNamespace(dataset=RepeatDataset(dataset('val'), 2)))
    hook.before_train(runner)
    hook.before_test(runner)
    (root / 'val' / '000000000002.jpg').unlink()
    with pytest.raises(DataCheckError, match=r'^train set: \S+instances_val.json: image id 2 .*does not exist'):
        hook.before_train(runner)
    with pytest.raises(DataCheckError, match=r'^test set: \S+instances_val.json: image id 2'):
        hook.before_test(runner)
    runner.train_dataloader = SimpleNamespace(dataset=dataset('train'))
    with pytest.raises(DataCheckError, match=r'^val set: '):
        hook.before_train(runner)


def run_python(python, code):
    result = subprocess.run([python, '-c', textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_check_needs_neither_mmseg_nor_mmdet(python, source, tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": [], "annotations": []}')
    out = run_python(python, f"""
        import sys
        sys.modules['mmseg'] = None; sys.modules['mmdet'] = None  # as if not installed
        import gfnet_seg
        from gfnet_seg.engine import DataCheckError, check_coco_annotations
        import gfnet_seg.engine
        check_coco_annotations({str(source / 'annotations/instances_train.json')!r}, {str(source / 'train')!r})
        try:
            check_coco_annotations({str(bad)!r}, '.')
        except DataCheckError as err:
            print('refused:', err)
        assert 'CocoDataCheckHook' not in gfnet_seg.engine.__all__
        print([m for m in sys.modules if m.split('.')[0] in ('mmseg', 'mmdet') and sys.modules[m] is not None])
    """)
    assert "refused: " + str(bad) + ": has no top-level 'categories'" in out
    assert out.strip().endswith('[]')


def test_generator_and_segmentation_path_need_no_mmdet(python, tmp_path):
    out = run_python(python, f"""
        import sys
        sys.modules['mmdet'] = None
        import gfnet_seg
        from gfnet_seg.datasets.synthetic_coco import make_synthetic_coco
        from gfnet_seg.datasets import SyntheticShapesDataset
        from gfnet_seg.engine import SegDataCheckHook, check_coco_annotations
        import gfnet_seg.engine
        make_synthetic_coco({str(tmp_path)!r}, 2, 1, 48, progress=False)
        check_coco_annotations({str(tmp_path / 'annotations/instances_val.json')!r}, {str(tmp_path / 'val')!r})
        print('CocoDataCheckHook' in gfnet_seg.engine.__all__)
    """)
    assert out.strip() == 'False'
