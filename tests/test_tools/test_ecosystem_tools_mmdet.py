"""mmdet's own tools, shipped inside the installed mmdet package (``mmdet/.mim/tools/``, what
``mim train mmdet`` runs), on the synthetic Mask R-CNN config at the tiny widths of the detection
tool tests. They import mmdet, and with it ``mmcv.ops``, before anything of ours (our package comes
in later, through the config's ``custom_imports``), so this checks that the install's import hook
(``gfnet_seg-mmcv-lite.pth`` -> ``gfnet_seg/compat.py``) makes the environment work for mmdet's
tools too, not only for ours; the last test shows that without the layer they do not start."""
import json
import os
import os.path as osp
import pickle
import re
from glob import glob
from types import SimpleNamespace

import cv2
import mmdet
import pytest
from mmengine.config import Config

from gfnet_seg.datasets.synthetic_coco import make_synthetic_coco

from det_utils import schedule, write_tiny_detector
from tool_utils import dumped_metrics, run_shipped_tool, shipped_tools

MMDET_TOOLS = shipped_tools(mmdet)
# 4 training images (none empty) at batch size 2: one epoch is the 2 iterations of the shortest
# run that writes a checkpoint (mmdet's schedules are by epoch); 2 validation images.
NUM_TRAIN, NUM_VAL = 4, 2
COCO_KEYS = [f'coco/{kind}_mAP{suffix}' for kind in ('bbox', 'segm') for suffix in ('', '_50', '_75', '_s', '_m', '_l')]

pytestmark = pytest.mark.skipif(not osp.isdir(MMDET_TOOLS), reason=f'mmdet ships no tools here: {MMDET_TOOLS}')


def run_mmdet_tool(tool, *args, cwd=None, check=True, layer=True):
    return run_shipped_tool(mmdet, tool, *args, cwd=cwd, check=check, layer=layer)


@pytest.fixture(scope='module')
def mmdet_detector(tmp_path_factory):
    """The tiny detector's config file, for one epoch, on a small generated COCO-layout set."""
    root = tmp_path_factory.mktemp('mmdet_coco')
    summary = make_synthetic_coco(str(root / 'data'), num_train=NUM_TRAIN, num_val=NUM_VAL, size=128, seed=0,
                                  progress=False)
    assert summary['train']['empty_images'] == 0  # else the epoch is shorter than 2 iterations
    (root / 'config').mkdir()
    return write_tiny_detector(root / 'config', root / 'data', schedule(1, warmup_iters=2))


@pytest.fixture(scope='module')
def mmdet_trained(tmp_path_factory, mmdet_detector):
    """mmdet's ``train.py``: one epoch (2 iterations), validated after it; the work dir, the
    checkpoint and the validation metrics it logged."""
    work_dir = tmp_path_factory.mktemp('mmdet_train')
    run_mmdet_tool('train.py', mmdet_detector, '--work-dir', work_dir)
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file(), sorted(os.listdir(work_dir))
    logs = glob(osp.join(str(work_dir), '*', 'vis_data', '2*.json'))
    assert len(logs) == 1, logs
    with open(logs[0]) as file:
        records = [json.loads(line) for line in file]
    assert any('loss_mask' in record for record in records), records  # it trained Mask R-CNN
    val = [record for record in records if 'coco/bbox_mAP' in record]
    assert len(val) == 1, records
    return SimpleNamespace(work_dir=work_dir, checkpoint=checkpoint, val_metrics=val[0])


@pytest.fixture(scope='module')
def mmdet_tested(tmp_path_factory, mmdet_detector, mmdet_trained):
    """mmdet's ``test.py`` on the checkpoint, keeping the results (``--out``) and drawing them
    (``--show-dir``, under ``<work_dir>/<timestamp>/``)."""
    root = tmp_path_factory.mktemp('mmdet_test')
    out = root / 'results.pkl'
    result = run_mmdet_tool('test.py', mmdet_detector, mmdet_trained.checkpoint, '--work-dir', root / 'work',
                            '--out', out, '--show-dir', 'show')
    return SimpleNamespace(output=result.stdout + result.stderr, metrics=dumped_metrics(root / 'work'), out=out,
                           drawn=glob(osp.join(str(root / 'work'), '*', 'show', '*.jpg')))


def test_mmdet_train_writes_a_checkpoint(mmdet_trained):
    assert mmdet_trained.checkpoint.stat().st_size > 0
    assert (mmdet_trained.work_dir / 'last_checkpoint').read_text().strip().endswith('epoch_1.pth')


def test_mmdet_test_reports_box_and_mask_map_of_the_checkpoint(mmdet_trained, mmdet_tested):
    output = mmdet_tested.output
    for line in ('Evaluating bbox...', 'Evaluating segm...', 'bbox_mAP_copypaste:', 'segm_mAP_copypaste:',
                 'coco/bbox_mAP:', 'coco/segm_mAP:'):
        assert line in output, (line, output[-3000:])
    # the checkpoint (loaded with torch's weights_only) scores what the model scored at the end of
    # training on the same images: test.py evaluated the trained weights
    assert {key: mmdet_tested.metrics[key] for key in COCO_KEYS} == \
        {key: mmdet_trained.val_metrics[key] for key in COCO_KEYS}
    with open(mmdet_tested.out, 'rb') as file:
        results = pickle.load(file)
    assert len(results) == NUM_VAL
    for result in results:
        instances = result['pred_instances']
        assert instances['bboxes'].shape[1] == 4 and len(instances['masks']) == len(instances['scores']) > 0
    assert len(mmdet_tested.drawn) == NUM_VAL, mmdet_tested.drawn


def test_mmdet_get_flops(mmdet_detector):
    # mmdet 3.3's get_flops.py has no --shape: it counts a forward pass on images of the val set
    result = run_mmdet_tool('analysis_tools/get_flops.py', mmdet_detector, '--num-images', 1)
    flops = re.search(r'^Flops: ([\d.]+)G$', result.stdout, re.M)
    params = re.search(r'^Params: ([\d.]+)M$', result.stdout, re.M)
    assert flops and params, result.stdout[-2000:]
    assert float(flops.group(1)) > 0
    assert float(params.group(1)) < 1  # the tiny widths (GFNet-H-Ti's Mask R-CNN has tens of millions)


def test_mmdet_print_config(mmdet_detector, tmp_path):
    # run in a scratch folder: the tool writes files (here the whole config, --save-path)
    result = run_mmdet_tool('misc/print_config.py', mmdet_detector, '--save-path', 'full/config.py', cwd=tmp_path)
    assert "type='GFNetH'" in result.stdout and "type='MaskRCNN'" in result.stdout, result.stdout[-2000:]
    saved = Config.fromfile(str(tmp_path / 'full' / 'config.py'))
    assert saved.model.backbone.type == 'GFNetH'
    assert saved.model.backbone.arch.embed_dims == [16, 32, 48, 64]  # the tiny widths, merged


def test_mmdet_browse_dataset(mmdet_detector, tmp_path):
    out = tmp_path / 'browse'
    run_mmdet_tool('analysis_tools/browse_dataset.py', mmdet_detector, '--output-dir', out, '--not-show')
    drawn = sorted(glob(osp.join(str(out), '*.jpg')))
    assert len(drawn) == NUM_TRAIN, drawn  # one picture per training image
    for path in drawn:
        picture = cv2.imread(path)
        # the training pipeline's image: resized (keeping the ratio) into 256 x 160
        assert picture is not None and max(picture.shape[:2]) <= 256 and min(picture.shape[:2]) <= 160, path


def test_mmdet_confusion_matrix(mmdet_detector, mmdet_tested, tmp_path):
    # The tool imports ``from mmcv.ops import nms`` first thing and, with --nms-iou-thr, runs it on
    # NumPy arrays. (mmdet 3.3 then pairs the scores from before that NMS with the boxes after it,
    # wrongly where it drops a box: the model's own NMS was at IoU 0.5, a looser 0.7 and no score
    # threshold drop none.)
    run_mmdet_tool('analysis_tools/confusion_matrix.py', mmdet_detector, mmdet_tested.out, tmp_path,
                   '--score-thr', 0, '--nms-iou-thr', 0.7)
    assert cv2.imread(str(tmp_path / 'confusion_matrix.png')) is not None


def test_without_the_layer_mmdets_tools_do_not_start():
    """The control: what makes the tools above run is the layer, not something else of the environment."""
    # the tool imports mmcv.ops before it parses its arguments (with the layer on, it ran above)
    result = run_mmdet_tool('analysis_tools/confusion_matrix.py', '--help', check=False, layer=False)
    assert result.returncode != 0 and "No module named 'mmcv._ext'" in result.stderr, result.stderr[-2000:]
