_base_ = ['./fpn_gfnet-h-ti_8xb1-80k_cityscapes-1024x1024.py']
model = dict(
    backbone=dict(arch='h-b', init_cfg=dict(checkpoint='checkpoints/gfnet-h-b.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
