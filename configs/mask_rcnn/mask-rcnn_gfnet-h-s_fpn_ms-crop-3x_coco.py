_base_ = ['./mask-rcnn_gfnet-h-ti_fpn_ms-crop-3x_coco.py']
model = dict(
    backbone=dict(arch='h-s', init_cfg=dict(checkpoint='checkpoints/gfnet-h-s.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
