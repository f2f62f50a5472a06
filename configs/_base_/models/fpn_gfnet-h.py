# Semantic FPN on GFNet-H: mmseg's FPN model (SegDataPreProcessor, FPN neck with 256 channels,
# FPNHead with 128 channels, cross-entropy) with the ResNet replaced by GFNet-H-Ti. The sizes
# (h-s, h-b) and the crop the filters are built for are set by each config in configs/sem_fpn.
_base_ = ['mmseg::_base_/models/fpn_r50.py']
custom_imports = dict(imports=['gfnet_seg'], allow_failed_imports=False)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='GFNetH',
        arch='h-ti',
        img_size=512,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/gfnet-h-ti.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
