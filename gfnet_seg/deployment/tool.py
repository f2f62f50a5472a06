"""What ``tools/deployment/pytorch2onnx.py`` does: load, export, verify, then write the file."""
import os
from typing import Optional, Sequence, Tuple

from ..fileio import atomic_write_bytes
from .export import DEFAULT_OPSET, DeployedSegmentor, check_export_args, export_onnx, load_deployed
from .verify import format_table, verify_onnx


class VerificationError(ValueError):
    """onnxruntime and PyTorch disagree beyond the tolerances."""


def default_shape(module) -> Tuple[int, int]:
    """The training crop of a segmentor config, or the classifier's ``pretrained_cfg`` input size."""
    if isinstance(module, DeployedSegmentor):
        size = module.segmentor.data_preprocessor.size
        return tuple(size) if size else (512, 512)
    return tuple(module.model.pretrained_cfg['input_size'][1:])


def default_verify_sizes(shape: Sequence[int], dynamic: bool) -> list:
    """The traced size; for a dynamic file also a larger one and one that is no multiple of 32
    (128x128 gives 160x224 and 200x300)."""
    height, width = shape
    if not dynamic:
        return [(height, width)]
    return [(height, width), (height + 32, width + 96), (height + 72, width + 172)]


def export_and_verify(model: str, checkpoint: str, out: str, shape: Optional[Sequence[int]] = None,
                      dynamic: bool = False, fft: str = 'native', opset: int = DEFAULT_OPSET,
                      with_preprocess: bool = False, options: Optional[dict] = None,
                      verify: Optional[Sequence[str]] = None, verify_sizes: Optional[Sequence[int]] = None,
                      dynamo: bool = True, log=print) -> list:
    """Export ``model`` (a config file or a timm name) with the weights of ``checkpoint`` to ``out``.

    ``verify`` (a list of images, possibly empty; None skips verification) compares onnxruntime with
    PyTorch on random inputs at ``verify_sizes`` (flat H W pairs) and on the images, prints the table,
    and raises ``VerificationError`` when they differ. ``out`` is written (atomically) only after
    everything succeeded, so no partial or unverified file is ever left. ``dynamo=False`` exports with
    the TorchScript-based exporter. Returns the table's rows.
    """
    if verify_sizes is not None and len(verify_sizes) % 2:
        raise ValueError(f'--verify-sizes takes H W pairs, got {len(verify_sizes)} numbers')
    module = load_deployed(model, checkpoint, options, with_preprocess)
    shape = tuple(shape) if shape else default_shape(module)
    check_export_args(module, shape, fft, opset, dynamo)
    log(f"exporting {model} at {shape[0]}x{shape[1]}{' (dynamic H, W)' if dynamic else ''}, fft={fft}, "
        f"opset {opset}{'' if dynamo else ', TorchScript exporter'} ...")
    data = export_onnx(module, shape, fft=fft, dynamic=dynamic, opset=opset, dynamo=dynamo)
    rows = []
    if verify is not None:
        sizes = (list(zip(verify_sizes[::2], verify_sizes[1::2])) if verify_sizes
                 else default_verify_sizes(shape, dynamic))
        rows = verify_onnx(data, module, sizes, verify, image_shape=None if dynamic else shape)
        log(format_table(rows, f'onnxruntime vs PyTorch ({fft}):'))
        bad = [row for row in rows if not row.ok]
        if bad:
            raise VerificationError(
                f'onnxruntime differs from PyTorch on {len(bad)} of {len(rows)} inputs (first: {bad[0].source} '
                f'{bad[0].size[0]}x{bad[0].size[1]}, max abs diff {bad[0].max_abs_diff:.2e}, argmax agreement '
                f'{100 * bad[0].argmax_agreement:.3f}%); {out} not written')
    atomic_write_bytes(out, data)
    log(f'wrote {out} ({os.path.getsize(out) / 2 ** 20:.1f} MiB)')
    return rows
