# The GFNet paper's segmentation schedule (after PVT): AdamW, lr 1e-4, weight decay 1e-4,
# poly decay with power 0.9 down to 0 over 80k iterations.
_base_ = ['mmseg::_base_/schedules/schedule_80k.py']
optimizer = dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4)
optim_wrapper = dict(optimizer=optimizer)
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000, by_epoch=False)]
# Checkpoints are written to a temporary file and renamed (gfnet_seg/engine), so a run killed
# while saving keeps its previous one; SafeCheckpointHook deletes outdated checkpoints
# (max_keep_ckpts, the previous best) only after the new one is complete, writes last_checkpoint
# atomically and stops in one line when a save fails (a full disk). Set here, beside mmseg's
# checkpoint hook, because two config bases may not both set default_hooks.
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook', backend_args=dict(backend='atomic_local')))
