# mmseg's Cityscapes recipe for FPN (4 GPUs x 2 images, 512x1024 crops, 80k iterations) with
# the GFNet optimiser; filters are built for the non-square crop.
_base_ = [
    '../_base_/models/fpn_gfnet-h.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_80k_adamw.py'
]
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=crop_size),
    decode_head=dict(num_classes=19))
