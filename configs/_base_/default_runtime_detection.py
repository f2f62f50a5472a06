# mmdet's runtime (logging, DetVisualizationHook, environment) with the reliability settings of
# the segmentation configs (default_runtime.py, gfnet_seg/engine):
# * CocoDataCheckHook reads the annotation files and every image before the first iteration and
#   names the first bad one (missing or unreadable image, box outside its image, unknown class);
# * IterationSeedHook seeds torch from (seed, iteration, rank), so that a run resumed with --resume
#   ends with the weights of an uninterrupted one;
# * StopOnInvalidLossHook stops at the first NaN/inf loss and refuses to save non-finite weights;
# * SafeCheckpointHook writes each checkpoint (every epoch, as mmdet) to a temporary file and
#   renames it, deleting outdated ones only after the new one is complete.
_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['gfnet_seg'], allow_failed_imports=False)
default_hooks = dict(
    checkpoint=dict(type='SafeCheckpointHook', interval=1, backend_args=dict(backend='atomic_local')))
custom_hooks = [
    dict(type='CocoDataCheckHook'),
    dict(type='IterationSeedHook'),
    dict(type='StopOnInvalidLossHook'),
]
# fixed in the config: mmengine builds the data sampler before --resume reads the seed back
randomness = dict(seed=0)
