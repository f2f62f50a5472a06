"""GFNet-H through mmseg's own timm wrapper: ``TIMMBackbone(model_name='gfnet_h_ti', features_only=True)``
inside the Semantic FPN config, loading an ImageNet-style checkpoint through ``checkpoint_path``."""
import timm
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import gfnet_seg  # noqa: F401
from gfnet_seg.models import load_checkpoint

CONFIG = 'configs/sem_fpn/fpn_gfnet-h-ti_1xb2-300_synthetic-128x128.py'
WIDTHS = dict(embed_dims=(16, 32, 48, 64), depths=(1, 1, 1, 1))


def batch(generator):
    images = [torch.randint(0, 256, (3, 128, 128), dtype=torch.uint8, generator=generator) for _ in range(2)]
    samples = []
    for image in images:  # the label is a function of the image, so that there is something to learn
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=(image[:1].long() * 6 // 256))
        samples.append(sample)
    return dict(inputs=images, data_samples=samples)


def test_timm_backbone_loads_checkpoint_and_trains(tmp_path):
    torch.manual_seed(0)
    imagenet = timm.create_model('gfnet_h_ti', img_size=64, **WIDTHS)  # a classifier at another size
    checkpoint = tmp_path / 'gfnet-h-ti.pth'
    torch.save({'model': imagenet.state_dict()}, checkpoint)

    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone = dict(type='TIMMBackbone', model_name='gfnet_h_ti', features_only=True,
                              pretrained=False, checkpoint_path=str(checkpoint), out_indices=(0, 1, 2, 3),
                              img_size=128, **WIDTHS)
    cfg.model.neck.in_channels = list(WIDTHS['embed_dims'])
    with DefaultScope.overwrite_default_scope('mmseg'):  # as the Runner does, without leaving it set
        segmentor = MODELS.build(cfg.model)

    # The backbone holds the checkpoint's weights, filters and position embedding resized 64 -> 128.
    oracle = timm.create_model('gfnet_h_ti', img_size=128, **WIDTHS)
    load_checkpoint(oracle, str(checkpoint))
    backbone = segmentor.backbone.timm_model.model.state_dict()
    for key, value in backbone.items():
        torch.testing.assert_close(value, oracle.state_dict()[key], msg=key)

    optim_wrapper = build_optim_wrapper(segmentor, cfg.optim_wrapper)
    generator = torch.Generator().manual_seed(0)
    before = {k: v.clone() for k, v in segmentor.backbone.state_dict().items()}
    losses = [sum(segmentor.train_step(batch(generator), optim_wrapper).values()).item() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    changed = [k for k, v in segmentor.backbone.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith('filter.complex_weight') for k in changed) and any('pos_embed' in k for k in changed)
