# GFNet paper, ADE20K: Semantic FPN, 80k iterations of 8 GPUs x 2 images, 512x512 crops,
# whole-image test at short side 512, mIoU. The backbone starts from the ImageNet checkpoint.
_base_ = [
    '../_base_/models/fpn_gfnet-h.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_80k_adamw.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=crop_size),
    decode_head=dict(num_classes=150))
train_dataloader = dict(batch_size=2)
