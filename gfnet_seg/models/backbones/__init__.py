"""Backbones registered in mmseg's MODELS registry and, where mmdet is installed, in mmdet's."""
from .gfnet_h import GFNetH

__all__ = ['GFNetH']
