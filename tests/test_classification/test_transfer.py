"""The documented transfer path: a tools/train_cls.py checkpoint goes, unchanged, into a
segmentation config's init_cfg, and the backbone starts from the classification weights."""
import os

import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from gfnet_seg import resize_filter, resize_pos_embed

from cls_utils import DEPTHS, EMBED_DIMS, IMAGE_SIZE

CONFIG = 'configs/sem_fpn/fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512.py'
CROP = 64  # segmentation crop: every filter and the position embedding need resizing from 32


def test_classification_checkpoint_initialises_segmentation_backbone(cli_run, repo_root):
    output_dir, _ = cli_run
    checkpoint = os.path.join(output_dir, 'checkpoint_best.pth')
    cfg = Config.fromfile(os.path.join(repo_root, CONFIG))
    # The classification run trained GFNet-H-Ti's shape at small widths; the config follows it.
    cfg.model.backbone.update(
        arch=dict(embed_dims=list(EMBED_DIMS), depths=list(DEPTHS), layer_scale_init=1e-3),
        img_size=(CROP, CROP), init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    cfg.model.neck.in_channels = list(EMBED_DIMS)
    cfg.model.data_preprocessor.size = (CROP, CROP)
    segmentor = MODELS.build(cfg.model)
    segmentor.init_weights()  # what the mmengine Runner does before the first iteration

    classifier = torch.load(checkpoint, weights_only=True)['model']
    backbone = segmentor.backbone.state_dict()
    patch_grid = CROP // 4
    expected = {'pos_embed': resize_pos_embed(classifier['pos_embed'], (patch_grid, patch_grid),
                                              (IMAGE_SIZE // 4, IMAGE_SIZE // 4))}
    for stage in range(len(DEPTHS)):
        key = f'blocks.{stage}.0.filter.complex_weight'
        grid = patch_grid // 2 ** stage
        expected[key] = resize_filter(classifier[key], (grid, grid // 2 + 1))
    shared = [key for key in classifier if not key.startswith(('head.', 'norm.'))]
    assert set(shared) <= set(backbone)
    for key in shared:
        torch.testing.assert_close(backbone[key], expected.get(key, classifier[key]), rtol=0, atol=0, msg=key)
