"""The main job end to end on a machine without data or weights (``make demo``).

Generate the synthetic ADE20K-layout data set, train the small Semantic FPN GFNet-H-Ti config
on it, evaluate the saved checkpoint as ``tools/test.py`` does, compare its mIoU with the
best image-blind predictor, and write an overlay picture as ``tools/inference.py`` does.
"""
import glob
import os.path as osp
import time
from typing import Optional

import torch
from mmengine.runner import find_latest_checkpoint

from .apis import inference_overlay, load_config, setup_test, test, train
from .datasets import CLASSES, chance_miou, class_pixel_counts, make_synthetic_ade20k

DEMO_CONFIG = 'configs/sem_fpn/fpn_gfnet-h-ti_1xb2-300_synthetic-128x128.py'


def _minutes(seconds: float) -> str:
    return f'{int(seconds // 60)}m{seconds % 60:04.1f}s'


def run_demo(config: str = DEMO_CONFIG, data_root: str = 'data/ade/synthetic',
             work_dir: Optional[str] = None, cfg_options: Optional[dict] = None,
             num_train: int = 200, num_val: int = 40, seed: int = 0, num_threads: int = 1) -> dict:
    """Run the whole job; returns the numbers and paths of the final summary.

    ``num_threads`` torch threads compute; the default of one leaves the second of two cores to
    the data loader workers. More threads than free cores is far slower, not faster: OpenMP
    threads busy-wait for each other while another process holds their core.
    """
    if num_threads < 1:
        raise ValueError(f'num_threads must be at least 1, got {num_threads}')
    torch.set_num_threads(num_threads)
    start = time.time()
    make_synthetic_ade20k(data_root, num_train, num_val, size=128, seed=seed)
    options = {'train_dataloader.dataset.data_root': data_root,
               'test_dataloader.dataset.data_root': data_root, **(cfg_options or {})}

    cfg = load_config(config, options, work_dir)
    # Evaluated once below, from the saved checkpoint, rather than also inside training.
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    train_start = time.time()
    train(cfg)
    train_seconds = time.time() - train_start
    checkpoint = find_latest_checkpoint(cfg.work_dir)

    metrics = test(setup_test(load_config(config, options, cfg.work_dir), checkpoint))
    counts = class_pixel_counts(osp.join(data_root, 'annotations', 'validation'), len(CLASSES))
    chance = chance_miou(counts)
    image = sorted(glob.glob(osp.join(data_root, 'images', 'validation', '*.jpg')))[0]
    overlay = osp.abspath(osp.join(cfg.work_dir, 'overlay.png'))
    inference_overlay(image, config, checkpoint, overlay, device='cpu', cfg_options=cfg_options)

    summary = dict(
        config=config, data_root=data_root, checkpoint=checkpoint, overlay=overlay, image=image,
        miou=metrics['mIoU'], aacc=metrics['aAcc'], chance=chance,
        iters=cfg.train_cfg.max_iters, batch_size=cfg.train_dataloader.batch_size,
        num_threads=num_threads, train_seconds=train_seconds, total_seconds=time.time() - start)
    print_summary(summary, num_train, num_val)
    return summary


def print_summary(s: dict, num_train: int, num_val: int) -> None:
    chance = s['chance']
    lines = [
        '',
        '=' * 78,
        'GFNet-H-Ti Semantic FPN on the synthetic ADE20K-layout data set',
        '=' * 78,
        f"config      {s['config']}",
        'backbone    random initialisation: no ImageNet checkpoint exists offline',
        f"data        {s['data_root']}: {num_train} training / {num_val} validation images, "
        f"{len(CLASSES)} classes ({', '.join(CLASSES)})",
        f"training    {s['iters']} iterations x {s['batch_size']} images in {_minutes(s['train_seconds'])} "
        f"({s['num_threads']} torch thread{'s' if s['num_threads'] > 1 else ''})",
        f"val mIoU    {s['miou']:.2f}%  (pixel accuracy {s['aacc']:.2f}%)",
        f"chance      {100 * chance['chance']:.2f}%  = best image-blind predictor: uniform "
        f"{100 * chance['uniform']:.2f}%, class prior {100 * chance['prior']:.2f}%, "
        f"majority class {100 * chance['majority']:.2f}%",
        f"checkpoint  {s['checkpoint']}",
        f"overlay     {s['overlay']}  (prediction on {osp.basename(s['image'])})",
        f"total time  {_minutes(s['total_seconds'])}",
        '=' * 78,
    ]
    print('\n'.join(lines), flush=True)
