"""Export GFNet segmentors and classifiers to ONNX, check them in onnxruntime, time them.

``onnx``, ``onnxruntime`` and ``onnxscript`` come with the ``deploy`` extra
(``pip install -e .[deploy]``); they are imported only inside the functions that need them, so
the rest of the package never requires them. ``tools/deployment/`` holds the command lines.
"""
from .export import (FFT_NAMES, MIN_DFT_OPSET, DeployedClassifier, DeployedSegmentor, ExportError,
                     export_onnx, load_classifier, load_deployed, load_segmentor)
from .verify import VerifyRow, format_table, verify_onnx

__all__ = ['FFT_NAMES', 'MIN_DFT_OPSET', 'DeployedClassifier', 'DeployedSegmentor', 'ExportError', 'VerifyRow',
           'export_onnx', 'format_table', 'load_classifier', 'load_deployed', 'load_segmentor', 'verify_onnx']
