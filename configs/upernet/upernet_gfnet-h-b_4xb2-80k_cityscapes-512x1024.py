# Drop path 0.4: GFNet-H-B's ImageNet value, above Swin-T's 0.3.
_base_ = ['./upernet_gfnet-h-ti_4xb2-80k_cityscapes-512x1024.py']
model = dict(
    backbone=dict(arch='h-b', drop_path_rate=0.4, init_cfg=dict(checkpoint='checkpoints/gfnet-h-b.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
