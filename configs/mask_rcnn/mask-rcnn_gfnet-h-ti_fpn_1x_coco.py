# Mask R-CNN GFNet-H-Ti on COCO, 1x with PVT's protocol: AdamW lr 1e-4, weight decay 1e-4,
# 12 epochs, 8 GPUs x 2 images, 1333x800 (see README.md).
_base_ = [
    '../_base_/models/mask-rcnn_gfnet-h.py', 'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x_adamw_pvt.py', '../_base_/default_runtime_detection.py'
]
default_scope = 'mmdet'
custom_imports = dict(imports=['gfnet_seg'], allow_failed_imports=False)
