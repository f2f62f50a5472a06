# RetinaNet on GFNet-H: mmdet's RetinaNet (DetDataPreprocessor padding to multiples of 32, FPN with
# 256 channels and 5 levels, RetinaHead, focal loss) with the ResNet replaced by GFNet-H-Ti.
# As mmdet's RetinaNet Swin-T, the backbone returns only the three stages the FPN reads (strides 8,
# 16, 32; no unused output norm), and the FPN starts at its first input.
# Filters and the position embedding are built for img_size (800, 1344): the padded size of a
# landscape image resized to 1333x800 (keep ratio, then padded to a multiple of 32), the largest
# grid a batch of landscape images reaches. Every batch, in training as in testing, gets them
# resized to its own grid; the ImageNet checkpoint's 224x224 ones are resized to img_size once,
# when init_cfg loads it (classifier dropped).
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='GFNetH',
        arch='h-ti',
        img_size=(800, 1344),
        out_indices=(1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/gfnet-h-ti.pth')),
    neck=dict(in_channels=[128, 256, 512], start_level=0, num_outs=5))
