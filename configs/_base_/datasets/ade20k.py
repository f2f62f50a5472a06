# ADE20K as mmseg trains on it: 512x512 crops of images resized by 0.5-2.0, test at short side 512.
_base_ = ['mmseg::_base_/datasets/ade20k.py']
