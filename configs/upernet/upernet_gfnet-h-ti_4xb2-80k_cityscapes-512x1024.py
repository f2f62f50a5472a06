# UperNet GFNet-H-Ti on Cityscapes: mmseg's Cityscapes length (4 GPUs x 2 images, 512x1024 crops,
# 80k iterations) with the UperNet Swin-T optimiser (schedule_80k_adamw_swin.py), drop path 0.3;
# filters are built for the non-square crop. Test on the full 1024x2048 images; --tta scales them by
# 0.5 ... 1.75 and flips (mmseg's Cityscapes base: the originals are the single-scale test size).
_base_ = [
    '../_base_/models/upernet_gfnet-h.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_80k_adamw_swin.py'
]
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=crop_size),
    decode_head=dict(num_classes=19),
    auxiliary_head=dict(num_classes=19))
