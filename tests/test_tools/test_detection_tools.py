"""The tools on a detection config, as on a segmentation one: ``tools/train.py`` trains Mask R-CNN
on GFNet-H (tiny widths) on the generated COCO-layout set to a box and mask mAP well above an
untrained model's; ``tools/test.py`` evaluates it with mmdet's CocoMetric (pycocotools), keeps the
results (``--out``) and draws them (``--show-dir``); ``dist_test.sh`` agrees with one process;
mmdet's ``DetInferencer`` and ``tools/inference.py`` predict what ``test.py`` kept."""
import glob
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from gfnet_seg import apis
from gfnet_seg.datasets.synthetic_coco import make_synthetic_coco

from det_utils import schedule, write_tiny_detector
from tool_utils import dumped_metrics, run_distributed, run_tool

EPOCHS = 6
# What training must reach on the validation set (COCO mAP in [0, 1]); an untrained model scores ~0.
MIN_BBOX_MAP, MIN_SEGM_MAP = 0.1, 0.15

CPU_PROCESSES_ONLY = pytest.mark.skipif(torch.cuda.is_available(),
                                        reason='tests CPU processes (gloo); with CUDA the tools use the GPUs')


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    """48 training and 12 validation images of 96 to 160 pixels, 4 classes, some empty images."""
    root = tmp_path_factory.mktemp('synthetic_coco')
    make_synthetic_coco(str(root), num_train=48, num_val=12, size=128, seed=0, progress=False)
    return root


@pytest.fixture(scope='module')
def detector(tmp_path_factory, coco_root):
    """The tiny detector's config file (a file: mmdet's inferencer and tools read it unchanged)."""
    return write_tiny_detector(tmp_path_factory.mktemp('det_config'), coco_root, schedule(EPOCHS))


@pytest.fixture(scope='module')
def det_trained(tmp_path_factory, detector):
    work_dir = tmp_path_factory.mktemp('det_train')
    run_tool('train.py', detector, '--work-dir', work_dir, timeout=600)
    checkpoint = work_dir / f'epoch_{EPOCHS}.pth'
    assert checkpoint.is_file(), sorted(p.name for p in work_dir.iterdir())
    return checkpoint


@pytest.fixture(scope='module')
def det_tested(tmp_path_factory, detector, det_trained):
    root = tmp_path_factory.mktemp('det_test')
    out, show_dir = root / 'results.pkl', root / 'show'
    run_tool('test.py', detector, det_trained, '--work-dir', root / 'work', '--out', out, '--show-dir', show_dir)
    return dict(metrics=dumped_metrics(root / 'work'), out=out, show_dir=show_dir)


def test_training_reaches_a_map_well_above_an_untrained_model(tmp_path, detector, det_tested):
    trained = det_tested['metrics']
    # the same detector as initialised (random, seeded), evaluated in this process; the Runner sets
    # mmdet's scope as the default one, which the tests that run after this one must not inherit
    from mmengine.registry import DefaultScope

    cfg = apis.load_config(detector, work_dir=str(tmp_path / 'work'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        runner = apis.build_runner(apis.setup_test(cfg, _untrained_checkpoint(cfg, tmp_path)), training=False)
        untrained = runner.test()
    print(f"bbox mAP {trained['coco/bbox_mAP']:.3f} (untrained {untrained['coco/bbox_mAP']:.3f}), "
          f"segm mAP {trained['coco/segm_mAP']:.3f} (untrained {untrained['coco/segm_mAP']:.3f})")
    assert untrained['coco/bbox_mAP'] < 0.02 and untrained['coco/segm_mAP'] < 0.02
    assert trained['coco/bbox_mAP'] >= MIN_BBOX_MAP and trained['coco/segm_mAP'] >= MIN_SEGM_MAP


def _untrained_checkpoint(cfg: Config, folder) -> str:
    from mmdet.registry import MODELS

    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = str(folder / 'untrained.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def test_test_py_keeps_and_draws_every_result(coco_root, det_tested):
    with open(det_tested['out'], 'rb') as file:
        results = pickle.load(file)
    assert len(results) == 12
    for result in results:
        instances = result['pred_instances']
        assert instances['bboxes'].shape[1] == 4 and len(instances['masks']) == len(instances['scores'])
    drawn = glob.glob(osp.join(str(det_tested['show_dir']), '**', '*.jpg'), recursive=True)
    assert len(drawn) == 12, drawn[:3]


def test_det_inferencer_predicts_what_test_py_kept(detector, det_trained, det_tested):
    from mmdet.apis import DetInferencer

    with open(det_tested['out'], 'rb') as file:
        kept = {osp.basename(result['img_path']): result['pred_instances'] for result in pickle.load(file)}
    inferencer = DetInferencer(model=detector, weights=str(det_trained), device='cpu', show_progress=False)
    images = sorted(glob.glob(osp.join(Config.fromfile(detector).val_dataloader.dataset.data_root, 'val', '*.jpg')))
    predictions = inferencer(images, return_datasamples=True)['predictions']
    assert len(predictions) == len(images) == len(kept)
    for path, prediction in zip(images, predictions):
        expected = kept[osp.basename(path)]
        got = prediction.pred_instances
        assert len(got) == len(expected['scores']), path
        np.testing.assert_allclose(got.bboxes.numpy(), expected['bboxes'].numpy(), atol=1e-3)
        np.testing.assert_allclose(got.scores.numpy(), expected['scores'].numpy(), atol=1e-5)


def test_inference_tool_draws_the_detections(tmp_path, detector, det_trained, det_tested):
    image = sorted(glob.glob(osp.join(Config.fromfile(detector).val_dataloader.dataset.data_root, 'val', '*.jpg')))[0]
    out = tmp_path / 'overlay.png'
    run_tool('inference.py', image, detector, det_trained, '--out', out, '--score-thr', 0.3)
    picture, original = cv2.imread(str(out)), cv2.imread(image)
    assert picture.shape == original.shape
    with open(det_tested['out'], 'rb') as file:
        kept = next(r for r in pickle.load(file) if osp.basename(r['img_path']) == osp.basename(image))
    confident = kept['pred_instances']['scores'] >= 0.3
    # pixels change where something is drawn, and only then
    assert (np.abs(picture.astype(int) - original).max() > 30) == bool(confident.any())


@CPU_PROCESSES_ONLY
def test_dist_test_two_processes_matches_one(tmp_path, detector, det_trained, det_tested):
    run_distributed('dist_test.sh', detector, det_trained, 2, '--work-dir', tmp_path)
    metrics = dumped_metrics(tmp_path)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert metrics[key] == pytest.approx(det_tested['metrics'][key], abs=1e-3), key
