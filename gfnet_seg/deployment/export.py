"""Export a GFNet segmentor (mmseg) or classifier (timm) to ONNX as it is deployed.

The segmentor is exported as mmseg's ``whole`` test mode computes it: backbone, neck, head, and the
logits resized to the input size (``EncoderDecoder.encode_decode``). Its input is the image after
mmseg's data preprocessor (float32 NCHW, channels in the model's order, normalised), or, with
``with_preprocess``, raw uint8 RGB with the preprocessor's channel order and normalisation inside the
graph. The classifier takes normalised images and returns logits.

``torch.onnx.export(dynamo=True)`` traces through ``torch.export``; with ``dynamic`` the height and
width are symbolic, so the filters and the position embedding are resized inside the graph exactly
as PyTorch resizes them. ``fft`` picks the global filter the graph holds (see
``gfnet_seg.models.global_filter.use_fft``): 'native' (ONNX DFT operators) or 'matmul' (real matrix
products, ``gfnet_seg.models.dft``) for runtimes without DFT.

``dynamo=False`` takes the TorchScript-based exporter instead (``torch.jit.trace``, as timm's
``onnx_export.py`` does), with ``dynamic_axes`` for a free height and width: the global filter is
then written as the same DFT nodes by ``gfnet_seg.models.dft.OnnxDFTFilter`` (DFT-17 is enough), and
the resizes of the filters and the position embedding are traced from the input's shape.
"""
import contextlib
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..models.checkpoint import load_checkpoint, read_checkpoint
from ..models.dft import MIN_ONNX_DFT_OPSET
from ..models.gfnet import MODEL_NAMES, GFNetPyramid, _GFNetBase

FFT_NAMES = ('native', 'matmul')
# The exporter writes rfft2/irfft2 as DFT-20 nodes (axis as an input, onesided and inverse
# attributes); an older opset has no such node (checked: opset 17-19 exports fail or are rejected).
MIN_DFT_OPSET = 20
# The TorchScript-based exporter writes them as DFT-17 or DFT-20 nodes (gfnet_seg.models.dft).
MIN_TORCHSCRIPT_DFT_OPSET = MIN_ONNX_DFT_OPSET
DEFAULT_OPSET = 20
# Checked before any file is written; the tools turn it into one 'error: ...' line and exit code 1.
ExportError = ValueError


def _check_file(path: str, what: str) -> None:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} file not found: {path}')


class DeployedSegmentor(nn.Module):
    """An mmseg segmentor's ``whole``-mode inference as a plain ``forward(images) -> logits``.

    ``with_preprocess``: the input is uint8 RGB, converted to the channel order the model was
    trained in and normalised as the config's ``data_preprocessor`` does.
    """

    def __init__(self, segmentor: nn.Module, with_preprocess: bool = False):
        super().__init__()
        self.segmentor = segmentor
        self.with_preprocess = with_preprocess
        pre = segmentor.data_preprocessor
        # mmseg reads images as BGR and flips them when bgr_to_rgb is set, so a model trained
        # without the flip sees BGR: flip an RGB input for it.
        self.flip_channels = not pre.channel_conversion
        if pre._enable_normalize:
            self.register_buffer('mean', pre.mean.reshape(1, -1, 1, 1).clone(), persistent=False)
            self.register_buffer('std', pre.std.reshape(1, -1, 1, 1).clone(), persistent=False)
        else:
            self.mean = self.std = None

    @property
    def min_size(self) -> int:
        return self.segmentor.backbone.strides[-1]

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 RGB ``(N, 3, H, W)`` -> what the segmentor's data preprocessor would hand on."""
        x = images.float()
        if self.flip_channels:
            x = x.flip(1)
        return x if self.mean is None else (x - self.mean) / self.std

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.normalize(inputs) if self.with_preprocess else inputs
        return self.segmentor.encode_decode(x, [dict(img_shape=x.shape[2:])])


class DeployedClassifier(nn.Module):
    """A timm GFNet; with ``with_preprocess`` its input is uint8 RGB, scaled and normalised with the
    model's ``pretrained_cfg`` mean and std in the graph."""

    def __init__(self, model: _GFNetBase, with_preprocess: bool = False):
        super().__init__()
        self.model = model
        self.with_preprocess = with_preprocess
        cfg = model.pretrained_cfg
        self.register_buffer('mean', torch.tensor(cfg['mean']).reshape(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer('std', torch.tensor(cfg['std']).reshape(1, 3, 1, 1) * 255, persistent=False)

    @property
    def min_size(self) -> int:
        return self.model.strides[-1] if isinstance(self.model, GFNetPyramid) else self.model.patch_size

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) / self.std

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(inputs) if self.with_preprocess else inputs)


def load_segmentor(config: str, checkpoint: str, cfg_options: Optional[dict] = None) -> nn.Module:
    """The mmseg segmentor of ``config`` with the weights of ``checkpoint``, in eval mode on the CPU.

    Refuses, before building anything, a config whose model is not a GFNet segmentor, and a
    checkpoint whose weights do not fit the model.
    """
    from mmseg.apis import init_model
    from mmseg.registry import MODELS

    from ..apis import load_config

    cfg = load_config(config, cfg_options)
    model_cfg = cfg.get('model', {})
    backbone_type = model_cfg.get('backbone', {}).get('type')
    backbone_cls = MODELS.get(backbone_type) if isinstance(backbone_type, str) else backbone_type
    if not (isinstance(backbone_cls, type) and issubclass(backbone_cls, GFNetPyramid)):
        raise ExportError(f'{config}: the model is not a GFNet segmentor (its backbone is '
                          f'{backbone_type!r}, not GFNetH); this tool exports GFNet models')
    segmentor_cls = MODELS.get(model_cfg.get('type'))
    if segmentor_cls is None or not hasattr(segmentor_cls, 'encode_decode'):
        raise ExportError(f"{config}: model type {model_cfg.get('type')!r} is not an mmseg "
                          'EncoderDecoder; only whole-image segmentors are exported')
    _check_file(checkpoint, 'checkpoint')
    state = read_checkpoint(checkpoint)
    state = state.get('state_dict', state)
    model = init_model(cfg, checkpoint=None, device='cpu')
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f'checkpoint {checkpoint} does not fit the model of {config}: '
                         f'{str(err).splitlines()[1].strip()}') from None
    if missing or unexpected:
        raise ValueError(f'checkpoint {checkpoint} does not fit the model of {config}: '
                         f'{len(missing)} weights missing (e.g. {missing[:2]}), '
                         f'{len(unexpected)} unexpected (e.g. {unexpected[:2]})')
    return model.eval()


def load_classifier(name: str, checkpoint: str, model_args: Optional[dict] = None) -> nn.Module:
    """``timm.create_model(name, **model_args)`` with the weights of ``checkpoint`` (official, DeiT-style,
    ``train_cls.py`` or mmengine files; filters resized to the model's size), in eval mode."""
    import timm

    if name not in MODEL_NAMES:
        raise ExportError(f"unknown GFNet model '{name}'; valid: {', '.join(MODEL_NAMES)}")
    _check_file(checkpoint, 'checkpoint')
    model = timm.create_model(name, **(model_args or {}))
    load_checkpoint(model, checkpoint, strict=True)
    return model.eval()


def load_deployed(model: str, checkpoint: str, options: Optional[dict] = None,
                  with_preprocess: bool = False) -> nn.Module:
    """A ``DeployedClassifier`` when ``model`` is one of the seven timm names (``options``: keyword
    arguments of ``timm.create_model``), else a ``DeployedSegmentor`` of the config file ``model``
    (``options``: ``--cfg-options``)."""
    if model in MODEL_NAMES:
        return DeployedClassifier(load_classifier(model, checkpoint, options), with_preprocess).eval()
    if not osp.isfile(model):
        raise FileNotFoundError(f'config file not found: {model} (give an mmseg config, or one of the '
                                f"timm names {', '.join(MODEL_NAMES)})")
    return DeployedSegmentor(load_segmentor(model, checkpoint, options), with_preprocess).eval()


def example_input(module: nn.Module, shape: Sequence[int], seed: int = 0) -> torch.Tensor:
    """A random ``(1, 3, H, W)`` input of the kind ``module`` takes: uint8 RGB or normalised float."""
    generator = torch.Generator().manual_seed(seed)
    if module.with_preprocess:
        return torch.randint(0, 256, (1, 3, *shape), dtype=torch.uint8, generator=generator)
    return torch.randn(1, 3, *shape, generator=generator)


def check_export_args(module: nn.Module, shape: Sequence[int], fft: str, opset: int, dynamo: bool = True) -> None:
    """Reject, with the reason, what cannot be exported."""
    if fft not in FFT_NAMES:
        raise ExportError(f"--fft must be one of {', '.join(FFT_NAMES)}, not '{fft}'")
    min_opset = MIN_DFT_OPSET if dynamo else MIN_TORCHSCRIPT_DFT_OPSET
    if fft == 'native' and opset < min_opset:
        raise ExportError(f'--opset {opset} is too old for --fft native: the exported DFT nodes need opset '
                          f'>= {min_opset} (or export with --fft matmul, which has no DFT)')
    if len(shape) != 2 or min(shape) < module.min_size:
        raise ExportError(f"--shape {' '.join(map(str, shape))} is smaller than the network's stride "
                          f'{module.min_size}; give H W of at least {module.min_size}')


def _traceable_upsample_forward(self, x: torch.Tensor) -> torch.Tensor:
    """mmseg's ``Upsample.forward`` with an integer ``scale_factor`` written in integer arithmetic:
    ``int(size * 2.0)`` fixes a symbolic size to the traced one, ``size * 2`` keeps it symbolic."""
    from mmseg.models.utils import resize

    size = self.size or [t * int(self.scale_factor) for t in x.shape[-2:]]
    return resize(x, size, None, self.mode, self.align_corners)


@contextlib.contextmanager
def traceable_mmseg():
    """Rewrite, while exporting, the mmseg code that would pin a dynamic size (as mmdeploy's
    rewriters do): ``Upsample`` with an integer scale factor (FPNHead's)."""
    try:
        from mmseg.models.utils import Upsample
    except ImportError:  # classification only
        yield
        return
    original = Upsample.forward

    def forward(self, x):
        scale = self.scale_factor
        integral = not self.size and isinstance(scale, float) and scale.is_integer()
        return _traceable_upsample_forward(self, x) if integral else original(self, x)

    Upsample.forward = forward
    try:
        yield
    finally:
        Upsample.forward = original


def _export_torchscript(module: nn.Module, example: torch.Tensor, dynamic: bool, opset: int) -> bytes:
    """``torch.onnx.export(dynamo=False)``: traced with torch.jit, H and W free with ``dynamic``."""
    import io

    dynamic_axes = None
    if dynamic:
        sizes = {2: 'height', 3: 'width'}
        # a segmentor's logits have the input's size; a classifier's (1, classes) none
        dynamic_axes = {'input': sizes, **({'logits': sizes} if isinstance(module, DeployedSegmentor) else {})}
    buffer = io.BytesIO()
    torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=opset, input_names=['input'],
                      output_names=['logits'], dynamic_axes=dynamic_axes)
    return buffer.getvalue()


def export_onnx(module: nn.Module, shape: Tuple[int, int], fft: str = 'native', dynamic: bool = False,
                opset: int = DEFAULT_OPSET, dynamo: bool = True) -> bytes:
    """The ONNX model of ``module`` as bytes (nothing is written here: the caller writes the file
    once it is verified), traced at ``shape`` = (H, W) with the global filter ``fft``. With
    ``dynamic`` the height and width are free (at least the network's stride). ``dynamo=False``
    exports with the TorchScript-based exporter."""
    from ..models.global_filter import use_fft

    check_export_args(module, shape, fft, opset, dynamo)
    if not dynamo:
        with use_fft(fft), traceable_mmseg():
            return _export_torchscript(module.eval(), example_input(module, shape), dynamic, opset)
    dynamic_shapes = None
    if dynamic:
        # At least two tokens per side at the last stage: torch.export specialises sizes 0 and 1
        # (a map one token wide is contiguous in any layout).
        height = torch.export.Dim('height', min=2 * module.min_size)
        width = torch.export.Dim('width', min=2 * module.min_size)
        dynamic_shapes = ({2: height, 3: width},)
    example = (example_input(module, shape),)
    with use_fft(fft), traceable_mmseg(), torch.no_grad():
        # Guards that sympy cannot prove over the whole range (torch's own FFT meta functions
        # reshape with Mod(...) conditions; a 1-wide map is contiguous in any layout) become
        # runtime checks instead of export errors; verify_onnx runs the file at several sizes.
        program = torch.export.export(module.eval(), example, dynamic_shapes=dynamic_shapes,
                                      prefer_deferred_runtime_asserts_over_guards=True)
        onnx_program = torch.onnx.export(program, example, dynamo=True, opset_version=opset,
                                         input_names=['input'], output_names=['logits'], verbose=False)
    model = onnx_program.model_proto
    # The exporter annotates the one-sided DFT outputs of a dynamic graph with the shape of the
    # two-sided ones, and onnxruntime then fails re-using buffers: drop the intermediate shape
    # annotations, onnxruntime infers them itself.
    del model.graph.value_info[:]
    return model.SerializeToString()
