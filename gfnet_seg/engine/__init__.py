"""mmengine pieces for reliable segmentation training (registered when mmseg is installed)."""
from .hooks import AtomicLocalBackend, IterationSeedHook, StopOnInvalidLossHook

__all__ = ['AtomicLocalBackend', 'IterationSeedHook', 'StopOnInvalidLossHook']
