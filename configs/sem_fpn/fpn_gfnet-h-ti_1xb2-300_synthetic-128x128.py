# The ADE20K recipe scaled down to the generated data set (tools/dataset_converters/
# make_synthetic_ade20k.py, ADE20K layout): 128x128 crops, 300 iterations of 2 images, which
# take a few minutes on 2 CPU cores (make demo).
# No ImageNet weights exist offline, so the backbone starts from random initialisation, and
# the learning rate is 10x the recipe's to learn in 300 iterations instead of 80k.
_base_ = ['./fpn_gfnet-h-ti_8xb2-80k_ade20k-512x512.py']
custom_imports = dict(imports=['gfnet_seg', 'gfnet_seg.datasets'], allow_failed_imports=False)
crop_size = (128, 128)
max_iters = 300
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=crop_size, init_cfg=None),
    decode_head=dict(num_classes=6))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(512, 128), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
dataset_type = 'SyntheticShapesDataset'
data_root = 'data/ade/synthetic'
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2, dataset=dict(type=dataset_type, data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
optimizer = dict(lr=1e-3)
optim_wrapper = dict(optimizer=optimizer)
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters))
randomness = dict(seed=0)
