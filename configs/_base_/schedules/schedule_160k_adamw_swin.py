# mmseg's recipe for UperNet Swin-T on ADE20K (swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_
# ade20k-512x512.py): AdamW, lr 6e-5, betas (0.9, 0.999), weight decay 0.01; linear warm-up from
# lr * 1e-6 over 1500 iterations, then poly decay with power 1.0 to 0 at 160k iterations.
# No weight decay, as Swin has none for its position tables and norms: every parameter whose name
# holds 'pos_embed' (the position embedding), 'norm' (every LayerNorm of GFNet-H: norm1/norm2 in
# the blocks and the per-output norm0..norm3, weights and biases) or 'gamma' (layer scale). All
# others decay: the global filters (complex_weight), linear and conv weights and biases, and the
# BatchNorms of the heads (named 'bn', as in Swin's recipe). mmengine matches custom_keys as
# substrings of the full parameter name (tests/test_configs.py lists the groups).
_base_ = ['mmseg::_base_/schedules/schedule_160k.py']
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'pos_embed': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.),
        'gamma': dict(decay_mult=0.),
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
# Checkpoints are written to a temporary file and renamed, and outdated ones deleted only after the
# new one is complete (SafeCheckpointHook, gfnet_seg/engine), as in schedule_80k_adamw.py.
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', backend_args=dict(backend='atomic_local')))
