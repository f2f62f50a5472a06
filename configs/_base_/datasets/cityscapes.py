# Cityscapes as mmseg trains on it: 512x1024 crops, test on the full 1024x2048 images.
_base_ = ['mmseg::_base_/datasets/cityscapes.py']
