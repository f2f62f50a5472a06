"""Robustness evaluation behind ``tools/analysis/robustness.py``: white-box attacks (``attacks``),
ImageNet-C corruptions (``corruptions``), a classifier's table (``classification``, torch + timm
only) and a segmentor's (``segmentation``, mmseg). Import the submodule you need; this package
imports nothing heavy, so ``import gfnet_seg`` never needs the optional dependencies."""
