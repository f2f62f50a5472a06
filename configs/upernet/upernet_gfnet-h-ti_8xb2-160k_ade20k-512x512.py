# UperNet GFNet-H-Ti on ADE20K with mmseg's UperNet Swin-T recipe (the protocol Swin, ConvNeXt,
# Twins and PoolFormer report): 160k iterations of 8 GPUs x 2 images, 512x512 crops, AdamW lr 6e-5
# with warm-up (schedule_160k_adamw_swin.py), drop path 0.3 as Swin-T; whole-image test at short
# side 512. The backbone starts from the ImageNet checkpoint, filters resized to the crop.
_base_ = [
    '../_base_/models/upernet_gfnet-h.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k_adamw_swin.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(img_size=crop_size),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
train_dataloader = dict(batch_size=2)
# Multi-scale + flip test (tools/test.py --tta) as those results were reported with mmseg 0.x:
# each image resized to fit (2048, 512) x r, r = 0.5 ... 1.75, i.e. relative to the single-scale
# test size. (mmseg 1.x's ADE20K base scales the original image by r instead, which differs from
# the single-scale test wherever an image's short side is not 512.)
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(int(2048 * r), int(512 * r)), keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
