# Cityscapes with 1024x1024 crops, 8 GPUs x 1 image, 80k iterations; filters built for 1024x1024.
_base_ = [
    '../_base_/models/fpn_gfnet-h.py', '../_base_/datasets/cityscapes_1024x1024.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_80k_adamw.py'
]
crop_size = (1024, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=crop_size),
    decode_head=dict(num_classes=19))
train_dataloader = dict(batch_size=1)
