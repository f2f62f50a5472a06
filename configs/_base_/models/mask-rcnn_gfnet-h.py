# Mask R-CNN on GFNet-H: mmdet's Mask R-CNN (DetDataPreprocessor padding to multiples of 32, FPN
# with 256 channels, RPN, RoIAlign box and mask heads) with the ResNet replaced by GFNet-H-Ti, its
# four stages (strides 4, 8, 16, 32) into the FPN, each through its own LayerNorm.
# Filters and the position embedding are built for img_size (800, 1344), the padded 1333x800
# input, and resized to every batch's grid (see retinanet_gfnet-h.py); the ImageNet checkpoint
# is loaded by init_cfg (classifier dropped, filters and position embedding resized to img_size).
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='GFNetH',
        arch='h-ti',
        img_size=(800, 1344),
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/gfnet-h-ti.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
