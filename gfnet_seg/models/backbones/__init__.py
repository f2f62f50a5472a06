"""Backbones registered in mmseg's MODELS registry."""
from .gfnet_h import GFNetH

__all__ = ['GFNetH']
