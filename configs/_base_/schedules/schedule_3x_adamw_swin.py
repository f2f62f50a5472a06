# Swin's 3x recipe for Mask R-CNN (mmdet's mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py): AdamW,
# lr 1e-4, betas (0.9, 0.999), weight decay 0.05; linear warm-up over 1000 iterations, 36 epochs,
# lr x0.1 after epochs 27 and 33; 8 GPUs x 2 images.
# No weight decay, as Swin has none for its position tables and norms: every parameter whose name
# holds 'pos_embed' (the position embedding), 'norm' (every LayerNorm of GFNet-H: norm1/norm2 in
# the blocks and the per-output norm0..norm3) or 'gamma' (layer scale). All others decay: the
# global filters (complex_weight), linear and conv weights and biases (mmengine matches
# custom_keys as substrings of the full parameter name; tests/test_configs_detection.py lists them).
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={
        'pos_embed': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.),
        'gamma': dict(decay_mult=0.),
    }))
