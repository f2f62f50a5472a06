"""``--amp`` (``setup_train(amp=True)``, as tools/train.py calls it): on a machine without CUDA
bfloat16 autocast in the forward pass (on one with CUDA mmengine's float16 AmpOptimWrapper),
float32 weights."""
import math

import torch

from gfnet_seg.apis import build_runner, load_config, setup_train

from tool_utils import CONFIG, REPO_ROOT, TINY_MODEL, data_options


def test_amp_trains_in_low_precision_with_float32_weights(tmp_path, synthetic_root):
    expected = torch.float16 if torch.cuda.is_available() else torch.bfloat16
    iters = 3
    # In this process: no data loader workers, which would outlive the test.
    options = {**TINY_MODEL, **data_options(synthetic_root), 'train_cfg.max_iters': iters,
               'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
               'default_hooks.logger.interval': 1}
    cfg = setup_train(load_config(f'{REPO_ROOT}/{CONFIG}', options, str(tmp_path)), amp=True)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = build_runner(cfg)

    dtypes = []
    fc1 = runner.model.backbone.blocks[0][0].mlp.fc1
    fc1.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    runner.train()

    assert dtypes == [expected] * iters
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == iters and all(math.isfinite(loss) for loss in losses)
    assert all(p.dtype == torch.float32 for p in runner.model.parameters())  # weights stay float32
