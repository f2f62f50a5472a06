_base_ = ['./upernet_gfnet-h-ti_4xb2-80k_cityscapes-512x1024.py']
model = dict(
    backbone=dict(arch='h-s', init_cfg=dict(checkpoint='checkpoints/gfnet-h-s.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
