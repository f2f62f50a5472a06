_base_ = ['./fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512.py']
model = dict(
    backbone=dict(arch='h-s', init_cfg=dict(checkpoint='checkpoints/gfnet-h-s.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
