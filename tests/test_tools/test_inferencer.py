"""mmseg's ``MMSegInferencer`` on a GFNet-H config and checkpoint, as the README shows it: images of
several sizes in, predictions equal to those ``tools/test.py`` saved, pictures written to ``out_dir``."""
import glob
import os.path as osp

import cv2
import numpy as np
from mmengine.config import Config

from tool_utils import CONFIG, REPO_ROOT, TINY_MODEL


def test_mmseg_inferencer_predicts_what_test_py_saved(tmp_path, synthetic_root, trained, tested):
    from mmseg.apis import MMSegInferencer

    import gfnet_seg  # noqa: F401
    cfg = Config.fromfile(osp.join(REPO_ROOT, CONFIG))
    cfg.merge_from_dict(TINY_MODEL)
    inferencer = MMSegInferencer(model=cfg, weights=str(trained.checkpoint), device='cpu')
    images = sorted(glob.glob(osp.join(str(synthetic_root), 'images', 'validation', '*.jpg')))
    result = inferencer(images, out_dir=str(tmp_path))
    assert len(result['predictions']) == len(images)
    for path, prediction in zip(images, result['predictions']):
        name = osp.splitext(osp.basename(path))[0]
        saved = cv2.imread(osp.join(str(tested.out), name + '.png'), cv2.IMREAD_UNCHANGED).astype(np.int64) - 1
        assert np.mean(prediction == saved) > 0.999, name  # test.py saves class + 1
    assert len(glob.glob(osp.join(str(tmp_path), 'vis', '*'))) == len(images)
