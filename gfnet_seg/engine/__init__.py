"""mmengine pieces for reliable segmentation training (registered when mmseg is installed)."""
from .data_check import DataCheckError, SegDataCheckHook, check_data_config, check_segmentation_dataset
from .hooks import AtomicLocalBackend, IterationSeedHook, StopOnInvalidLossHook

__all__ = ['AtomicLocalBackend', 'DataCheckError', 'IterationSeedHook', 'SegDataCheckHook',
           'StopOnInvalidLossHook', 'check_data_config', 'check_segmentation_dataset']
