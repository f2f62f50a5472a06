# Logging, visualisation and environment as in mmseg; checkpoint and logger hooks come with the
# schedule. Added for runs that last days (gfnet_seg/engine):
# * SegDataCheckHook reads every train and val file before the first iteration and names the
#   first bad one (missing annotation, unreadable image, label outside the classes);
# * IterationSeedHook seeds torch from (seed, iteration, rank), so that dropout and drop path
#   do not depend on what ran before: with the fixed seed below, a run resumed with --resume
#   ends with the weights of an uninterrupted one;
# * StopOnInvalidLossHook stops at the first NaN/inf loss, and refuses to save non-finite
#   weights, so the last checkpoint is always one to resume from.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_hooks = [
    dict(type='SegDataCheckHook'),
    dict(type='IterationSeedHook'),
    dict(type='StopOnInvalidLossHook'),
]
# A seed fixed in the config: mmengine builds the data sampler before --resume reads the seed
# back from the checkpoint, so a random seed would replay another data order.
randomness = dict(seed=0)
