"""Run an exported model in onnxruntime and compare it with PyTorch eager, input by input."""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from .export import example_input

# The acceptance bar: logits within 1e-4, and the same class at 99.99% of the pixels.
MAX_ABS_DIFF = 1e-4
MIN_ARGMAX_AGREEMENT = 0.9999


@dataclass
class VerifyRow:
    """One input: onnxruntime against PyTorch eager (the model as trained, native FFT)."""
    source: str
    size: Tuple[int, int]
    max_abs_diff: float
    argmax_agreement: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= MAX_ABS_DIFF and self.argmax_agreement >= MIN_ARGMAX_AGREEMENT


def ort_session(model: Union[bytes, str], threads: Optional[int] = None, optimization: str = 'all'):
    """An onnxruntime CPU session on a model file or its bytes.

    ``optimization``: 'disable', 'basic', 'extended' or 'all' (``GraphOptimizationLevel``);
    ``threads``: intra-op threads (default: onnxruntime's, one per physical core).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        'disable': ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # warnings about unused initialisers and the like are noise here
    return ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])


def image_input(module: nn.Module, path: str, shape: Optional[Sequence[int]] = None) -> torch.Tensor:
    """The image at ``path`` as ``module`` takes it, resized to ``shape`` (H, W) when given."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert('RGB')
        if shape is not None:
            image = image.resize((shape[1], shape[0]), Image.BILINEAR)
        rgb = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None]
    return rgb if module.with_preprocess else module.normalize(rgb)


def compare(outputs: np.ndarray, reference: np.ndarray) -> Tuple[float, float]:
    """Max abs difference, and the share of positions (pixels, or images for a classifier) whose
    arg-max over classes (dim 1) agrees."""
    diff = float(np.abs(outputs - reference).max())
    agreement = float((outputs.argmax(1) == reference.argmax(1)).mean())
    return diff, agreement


def verify_onnx(model: Union[bytes, str], module: nn.Module, sizes: Sequence[Tuple[int, int]],
                images: Sequence[str] = (), image_shape: Optional[Sequence[int]] = None,
                session=None) -> List[VerifyRow]:
    """Run ``model`` in onnxruntime on a random input per size and on each image (resized to
    ``image_shape`` when given, for a fixed-size model) and compare with ``module`` in PyTorch."""
    session = session or ort_session(model)
    inputs = [(f'random {h}x{w}', example_input(module, (h, w), seed=i)) for i, (h, w) in enumerate(sizes)]
    inputs += [(path, image_input(module, path, image_shape)) for path in images]
    rows = []
    for source, x in tqdm(inputs, desc='verify in onnxruntime', unit='input', leave=False):
        with torch.no_grad():
            reference = module(x).numpy()
        outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        diff, agreement = compare(outputs, reference)
        rows.append(VerifyRow(source.split(' ')[0], tuple(x.shape[2:]), diff, agreement))
    return rows


def format_table(rows: Sequence[VerifyRow], title: str = '') -> str:
    """The rows as a Markdown table."""
    lines = [title] if title else []
    lines += ['| input | size | max abs diff | argmax agreement | within tolerance |', '|---|---|---|---|---|']
    lines += [f'| {r.source} | {r.size[0]}x{r.size[1]} | {r.max_abs_diff:.2e} | {100 * r.argmax_agreement:.3f}% | '
              f"{'yes' if r.ok else 'NO'} |" for r in rows]
    return '\n'.join(lines)
