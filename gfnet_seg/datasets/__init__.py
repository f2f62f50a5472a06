"""Segmentation data: the generated ADE20K-layout data set and the chance baseline for mIoU."""
from .chance import chance_miou, class_pixel_counts
from .synthetic import CLASSES, PALETTE, SyntheticShapesDataset, make_synthetic_ade20k, render_sample

__all__ = ['CLASSES', 'PALETTE', 'SyntheticShapesDataset', 'chance_miou', 'class_pixel_counts',
           'make_synthetic_ade20k', 'render_sample']
