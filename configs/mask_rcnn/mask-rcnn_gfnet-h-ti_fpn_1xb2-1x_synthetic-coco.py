# Mask R-CNN GFNet-H-Ti on the generated COCO-layout set (configs/_base_/datasets/synthetic_coco.py),
# for the tests and a demo on a CPU: 12 epochs of 48 images, 1 GPU (or CPU) x 2 images (about
# 260 iterations: empty images are skipped), random initialisation (no ImageNet weights offline), so AdamW at lr 5e-4 with a
# short warm-up. Filters built for (160, 256), the padded size of the 256x160 resize.
#     python -c "from gfnet_seg.datasets import make_synthetic_coco; make_synthetic_coco('data/coco/synthetic')"
#     python tools/train.py configs/mask_rcnn/mask-rcnn_gfnet-h-ti_fpn_1xb2-1x_synthetic-coco.py
_base_ = [
    '../_base_/models/mask-rcnn_gfnet-h.py', '../_base_/datasets/synthetic_coco.py',
    '../_base_/schedules/schedule_1x_adamw_pvt.py', '../_base_/default_runtime_detection.py'
]
default_scope = 'mmdet'
custom_imports = dict(imports=['gfnet_seg'], allow_failed_imports=False)
model = dict(
    backbone=dict(img_size=(160, 256), init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)))
optim_wrapper = dict(optimizer=dict(lr=0.0005))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
train_dataloader = dict(num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=10))
auto_scale_lr = dict(base_batch_size=2)
