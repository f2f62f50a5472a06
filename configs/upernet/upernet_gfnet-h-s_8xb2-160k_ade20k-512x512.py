_base_ = ['./upernet_gfnet-h-ti_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(arch='h-s', init_cfg=dict(checkpoint='checkpoints/gfnet-h-s.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
