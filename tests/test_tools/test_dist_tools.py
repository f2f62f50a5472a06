"""tools/dist_test.sh with two CPU processes (torchrun, gloo) on a config with SyncBN, and what
CPU processes say about training with it. (Two-process training against one process is in
tests/test_reliability/test_seg_distributed.py.)"""
import pytest
import torch

from gfnet_seg.apis import load_config, prepare_cpu_distributed

from tool_utils import CONFIG, REPO_ROOT, TINY_MODEL, as_flags, data_options, dumped_metrics, run_distributed

# With CUDA, dist_*.sh start one process per GPU (nccl), and SyncBN is supported: not what these test.
CPU_PROCESSES_ONLY = pytest.mark.skipif(torch.cuda.is_available(),
                                        reason='tests CPU processes (gloo); with CUDA the tools use the GPUs')


@CPU_PROCESSES_ONLY
def test_dist_test_two_processes_matches_one(tmp_path, synthetic_root, trained, tested):
    """Two processes split the 8 validation images and the metric gathers them back; SyncBN,
    which CPU processes cannot run, is evaluated as the BN it equals in eval mode."""
    run_distributed('dist_test.sh', CONFIG, trained.checkpoint, 2, '--work-dir', tmp_path,
                    *as_flags({**TINY_MODEL, **data_options(synthetic_root)}))
    assert dumped_metrics(tmp_path)['mIoU'] == pytest.approx(tested.metrics['mIoU'], abs=0.01)


@CPU_PROCESSES_ONLY
def test_cpu_processes_refuse_sync_bn_naming_the_fix():
    cfg = load_config(f'{REPO_ROOT}/{CONFIG}', launcher='pytorch')
    with pytest.raises(ValueError, match='model.decode_head.norm_cfg.type=BN'):
        prepare_cpu_distributed(cfg)
