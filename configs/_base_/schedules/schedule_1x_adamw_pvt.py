# PVT's detection recipe (mmdet's retinanet_pvt-t_fpn_1x_coco.py): mmdet's 1x schedule (12 epochs,
# linear warm-up over 500 iterations, lr x0.1 after epochs 8 and 11) with AdamW, lr 1e-4, weight
# decay 1e-4 on every parameter; 8 GPUs x 2 images (auto_scale_lr's base batch 16).
_base_ = ['mmdet::_base_/schedules/schedule_1x.py']
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.0001))
