# The generated COCO-layout set (gfnet_seg.datasets.synthetic_coco: 48 train and 12 val images of
# 96..160 px, 4 classes with COCO's non-contiguous ids, empty images, crowd regions):
#     python -c "from gfnet_seg.datasets import make_synthetic_coco; make_synthetic_coco('data/coco/synthetic')"
# Read by mmdet's CocoDataset with the set's classes; keep-ratio resize into 256x160 (short side
# at most 160, long side at most 256), padded to multiples of 32 by the model.
_base_ = ['mmdet::_base_/datasets/coco_instance.py']
data_root = 'data/coco/synthetic/'
metainfo = dict(
    classes=('ellipse', 'rectangle', 'triangle', 'star'),
    palette=[(255, 0, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)])
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(256, 160), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(256, 160), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
