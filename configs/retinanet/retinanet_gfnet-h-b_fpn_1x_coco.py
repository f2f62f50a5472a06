_base_ = ['./retinanet_gfnet-h-ti_fpn_1x_coco.py']
model = dict(
    backbone=dict(arch='h-b', init_cfg=dict(checkpoint='checkpoints/gfnet-h-b.pth')),
    neck=dict(in_channels=[192, 384, 768]))
