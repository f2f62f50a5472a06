"""Segmentation data: the generated ADE20K-layout data set and the chance baseline for mIoU; detection
data: the generated COCO-layout data set (``synthetic_coco``, no mmdet needed to write it)."""
from .chance import chance_miou, class_pixel_counts
from .synthetic import CLASSES, PALETTE, SyntheticShapesDataset, make_synthetic_ade20k, render_sample
from .synthetic_coco import COCO_CLASSES, METAINFO, make_synthetic_coco

__all__ = ['CLASSES', 'COCO_CLASSES', 'METAINFO', 'PALETTE', 'SyntheticShapesDataset', 'chance_miou',
           'class_pixel_counts', 'make_synthetic_ade20k', 'make_synthetic_coco', 'render_sample']
