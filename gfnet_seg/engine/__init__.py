"""mmengine pieces for reliable training: segmentation ones registered when mmseg is installed, the
COCO data check (``coco_check``, which needs neither) with its hook registered when mmdet is."""
import importlib.util

from .coco_check import DataCheckError, check_coco_annotations

__all__ = ['DataCheckError', 'check_coco_annotations']

if importlib.util.find_spec('mmseg') is not None:
    from .data_check import SegDataCheckHook, check_data_config, check_segmentation_dataset
    from .hooks import (AtomicLocalBackend, IterationSeedHook, SafeCheckpointHook, StopOnInvalidLossHook,
                        fallback_checkpoint)

    __all__ += ['AtomicLocalBackend', 'IterationSeedHook', 'SafeCheckpointHook', 'SegDataCheckHook',
                'StopOnInvalidLossHook', 'check_data_config', 'check_segmentation_dataset', 'fallback_checkpoint']

from . import coco_check  # noqa: E402

if hasattr(coco_check, 'CocoDataCheckHook'):  # defined where mmdet imports
    from .coco_check import CocoDataCheckHook

    __all__.append('CocoDataCheckHook')
