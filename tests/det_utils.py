"""What the detection tool tests share: the synthetic Mask R-CNN config at tiny widths, as a config
file beside the data (so that mmdet's own inferencer and tools read it unchanged)."""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DET_CONFIG = os.path.join(REPO_ROOT, 'configs', 'mask_rcnn', 'mask-rcnn_gfnet-h-ti_fpn_1xb2-1x_synthetic-coco.py')

# GFNet-H-Ti's shape at tiny widths, a narrow FPN and heads, and fewer proposals and sampled RoIs
# (torchvision's CPU NMS and RoIAlign backward dominate a step otherwise): an iteration on two
# 160x256 images takes a fraction of a second on one core. The learning rate is 4x the config's for
# the short schedules of the tests.
TINY_DETECTOR = """
_base_ = [{base!r}]
data_root = {data_root!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + '/annotations/instances_val.json')
test_evaluator = val_evaluator
roi_layer = dict(type='RoIAlign', output_size=7, sampling_ratio=2)
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1], layer_scale_init=1e-3)),
    neck=dict(in_channels=[16, 32, 48, 64], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32, roi_layer=roi_layer),
        bbox_head=dict(in_channels=32, fc_out_channels=64),
        mask_roi_extractor=dict(out_channels=32, roi_layer=dict(roi_layer, output_size=14)),
        mask_head=dict(in_channels=32, conv_out_channels=32)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=300, max_per_img=150), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=150)))
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(logger=dict(interval=5))
"""


def schedule(epochs: int, warmup_iters: int = 20) -> str:
    """Config lines for ``epochs`` of training, validated after the last, lr divided by 10 for the last."""
    return f"""
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end={warmup_iters}),
    dict(type='MultiStepLR', begin=0, end={epochs}, by_epoch=True, milestones=[{max(epochs - 1, 1)}], gamma=0.1),
]
"""


def write_tiny_detector(folder, data_root, extra: str = '') -> str:
    """Write the tiny detector config to ``folder``, and beside it one that inherits it and adds
    ``extra`` (config lines); returns the latter's path."""
    (folder / 'tiny_detector.py').write_text(TINY_DETECTOR.format(base=DET_CONFIG, data_root=str(data_root)))
    (folder / 'detector.py').write_text("_base_ = ['./tiny_detector.py']\n" + extra)
    return str(folder / 'detector.py')
