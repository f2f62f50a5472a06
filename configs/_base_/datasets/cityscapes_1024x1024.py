# Cityscapes with 1024x1024 crops, test on the full 1024x2048 images.
_base_ = ['mmseg::_base_/datasets/cityscapes_1024x1024.py']
