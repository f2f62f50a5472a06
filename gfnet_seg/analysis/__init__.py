"""Analysis behind tools/analysis/: FLOPs with FFT handlers, the benchmark harness, filter pictures,
training curves."""
from .filters import filter_images, plot_filters, read_filters
from .flops import FLOP_CONVENTION, Complexity, build_model, count_complexity, flop_analyzer
from .logs import TrainingCurves, plot_curves, read_curves

__all__ = ['FLOP_CONVENTION', 'Complexity', 'TrainingCurves', 'build_model', 'count_complexity', 'filter_images',
           'flop_analyzer', 'plot_curves', 'plot_filters', 'read_curves', 'read_filters']
