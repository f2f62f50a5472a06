"""mmengine pieces for reliable segmentation training (registered when mmseg is installed)."""
from .data_check import DataCheckError, SegDataCheckHook, check_data_config, check_segmentation_dataset
from .hooks import (AtomicLocalBackend, IterationSeedHook, SafeCheckpointHook, StopOnInvalidLossHook,
                    fallback_checkpoint)

__all__ = ['AtomicLocalBackend', 'DataCheckError', 'IterationSeedHook', 'SafeCheckpointHook', 'SegDataCheckHook',
           'StopOnInvalidLossHook', 'check_data_config', 'check_segmentation_dataset', 'fallback_checkpoint']
