"""gfnet-seg: Global Filter Networks for classification (timm), segmentation (mmseg) and detection (mmdet).

The mmcv-lite compatibility layer (``compat``) is installed first, before anything can import mmseg
or mmdet; the install's ``.pth`` hook already has it in place for every program of the environment.
The GFNet-H backbone is registered in mmseg's (and mmdet's) registry when installed, so that
``custom_imports=dict(imports=['gfnet_seg'])`` in a config is all it takes; the classification
models never need mmseg.
"""
import importlib.util

from . import compat

compat.install()

from .models import (ARCH_SETTINGS, GFNet, GFNetPyramid, GlobalFilter, arch_settings,  # noqa: E402
                     create_gfnet, load_checkpoint, resize_filter, resize_pos_embed)

__version__ = '0.1.0'
__all__ = ['ARCH_SETTINGS', 'GFNet', 'GFNetPyramid', 'GlobalFilter', 'arch_settings', 'create_gfnet',
           'load_checkpoint', 'resize_filter', 'resize_pos_embed']

if importlib.util.find_spec('mmseg') is not None:
    from . import engine  # noqa: E402,F401  (registers hooks and the 'atomic_local' backend)
    from .models.backbones import GFNetH  # noqa: E402,F401  (registers type='GFNetH')
    __all__.append('GFNetH')
