# Mask R-CNN GFNet-H-Ti on COCO, 3x with Swin's protocol: multi-scale training (short side
# 480..800) with random crop, AdamW lr 1e-4, weight decay 0.05 (none for the position embedding,
# norms and layer scales), 36 epochs, 8 GPUs x 2 images (see README.md).
_base_ = [
    '../_base_/models/mask-rcnn_gfnet-h.py', '../_base_/datasets/coco_instance_ms-crop.py',
    '../_base_/schedules/schedule_3x_adamw_swin.py', '../_base_/default_runtime_detection.py'
]
default_scope = 'mmdet'
custom_imports = dict(imports=['gfnet_seg'], allow_failed_imports=False)
