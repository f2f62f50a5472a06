"""GFNet models (torch + timm only); importing this registers the timm entry points."""
from .checkpoint import LoadReport, UnsafeCheckpointError, adapt_state_dict, load_checkpoint, read_checkpoint, unwrap_state_dict
from .gfnet import ARCH_SETTINGS, GFNet, GFNetPyramid, arch_settings, create_gfnet
from .global_filter import GlobalFilter, filter_size, resize_filter, resize_pos_embed

__all__ = [
    'ARCH_SETTINGS', 'GFNet', 'GFNetPyramid', 'GlobalFilter', 'LoadReport', 'UnsafeCheckpointError',
    'adapt_state_dict', 'arch_settings', 'create_gfnet', 'filter_size', 'load_checkpoint', 'read_checkpoint',
    'resize_filter', 'resize_pos_embed', 'unwrap_state_dict',
]
