"""Reading GFNet checkpoints and adapting them to a model: the one place that does it.

Classification (``--finetune``) and segmentation (``GFNetH.init_weights``) come through
``load_checkpoint``, timm (``pretrained=True`` from a file, a URL, ``hf-hub:`` or ``local-dir:``)
through the model's ``checkpoint_filter_fn``; both fit the weights with ``fit_state_dict``, which
unwraps them, resizes filters and the position embedding to the model's grid
(``adapt_state_dict``), checks that they fit and reports what happened. ``read_checkpoint`` reads
a ``.pth`` safely, a ``.safetensors`` file (by extension or content) and a folder in timm's
Hugging Face layout (``model.safetensors`` or ``pytorch_model.bin``, as ``save_for_hf`` writes).
"""
import os
import pickle
import re
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Tuple, Union

import torch
import torch.nn as nn

from .global_filter import resize_filter, resize_pos_embed

# Where the weights sit inside a checkpoint: official GFNet/DeiT files ('model', 'model_ema'),
# mmengine files ('state_dict'); anything else is taken as a bare state dict.
WRAPPER_KEYS = ('model', 'model_ema', 'state_dict')
# Prefixes in front of our key names: DDP's wrapper, and mmseg's EncoderDecoder.
DDP_PREFIX = 'module.'
BACKBONE_PREFIX = 'backbone.'
HEAD_PREFIX = 'head.'
_FIRST_FILTER = re.compile(r'^blocks\.0\.(0\.)?filter\.complex_weight$')


class UnsafeCheckpointError(RuntimeError):
    """The file needs arbitrary unpickling, which we never do for weights we load."""


# The weights file in a folder of timm's Hugging Face layout, in the order timm looks for them.
HF_WEIGHTS_FILES = ('model.safetensors', 'pytorch_model.bin')


def is_safetensors(path: str) -> bool:
    """Whether ``path`` is a safetensors file: named ``.safetensors``, or starting as one does (an
    8-byte little-endian header length, then the JSON header's '{')."""
    if str(path).endswith('.safetensors'):
        return True
    try:
        with open(path, 'rb') as f:
            head = f.read(9)
        size = os.path.getsize(path)
    except OSError:
        return False
    return len(head) == 9 and head[8:] == b'{' and 8 + struct.unpack('<Q', head[:8])[0] <= size


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """The tensors of a safetensors file (a flat state dict); a damaged file is an ``IncompleteFileError``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..fileio import IncompleteFileError

    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    try:
        return load_file(path, device='cpu')
    except SafetensorError as err:
        raise IncompleteFileError(f'checkpoint {path} is truncated or corrupt safetensors ({err})') from None


def weights_file_in_folder(path: str) -> str:
    """The weights file of a folder in timm's Hugging Face layout (``save_for_hf``'s output)."""
    for name in HF_WEIGHTS_FILES:
        if os.path.isfile(os.path.join(path, name)):
            return os.path.join(path, name)
    raise FileNotFoundError(f'{path} is a folder without {" or ".join(HF_WEIGHTS_FILES)} '
                            "(timm's Hugging Face layout, as timm.models.save_for_hf writes it)")


def read_checkpoint(path: str) -> dict:
    """Load a checkpoint: a ``.pth`` with ``weights_only=True`` (explaining how to convert one that
    needs more, and naming a truncated or corrupt file as such, ``IncompleteFileError``, instead of
    torch's zip or pickle error), a safetensors file, or a folder in timm's Hugging Face layout."""
    from ..fileio import check_checkpoint

    path = os.fspath(path)
    if os.path.isdir(path):
        path = weights_file_in_folder(path)
    if is_safetensors(path):
        return read_safetensors(path)
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f'checkpoint file not found: {path}') from None
    except pickle.UnpicklingError as err:
        check_checkpoint(path)  # a truncated file can fail here too: say so
        raise UnsafeCheckpointError(
            f'{path} holds Python objects besides tensors (e.g. training arguments), and '
            'gfnet_seg loads weights with torch.load(weights_only=True) so that no file can run '
            'code. If you trust the file, keep only its weights once with: '
            f'python tools/convert_checkpoint.py {path} OUT.pth  ({err})') from None
    except (RuntimeError, EOFError, OSError):
        check_checkpoint(path)  # torch's error for a truncated file is a zip or EOF error
        raise


def convert_trusted_checkpoint(src: str, dst: str, wrapper_key: str = None) -> int:
    """Rewrite a checkpoint that needs full unpickling as ``{'model': weights}`` (tensors only).

    This is the one place that unpickles arbitrary objects, on the user's explicit word that
    ``src`` is trusted. Returns the number of tensors written.
    """
    from ..fileio import atomic_torch_save

    if is_safetensors(src):  # tensors only already; rewritten all the same
        checkpoint = read_safetensors(src)
    else:
        checkpoint = torch.load(src, map_location='cpu', weights_only=False)
    state_dict = unwrap_state_dict(checkpoint, wrapper_key)
    if not state_dict:
        raise ValueError(f'{src} holds no tensors to keep')
    atomic_torch_save({'model': state_dict}, dst)
    return len(state_dict)


def unwrap_state_dict(checkpoint: Mapping, wrapper_key: str = None) -> Dict[str, torch.Tensor]:
    """The model weights inside ``checkpoint``, without DDP/EncoderDecoder key prefixes.

    ``wrapper_key`` picks one wrapper (e.g. 'model_ema'); by default the first of WRAPPER_KEYS.
    """
    keys = (wrapper_key,) if wrapper_key else WRAPPER_KEYS
    for key in keys:
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    else:
        if wrapper_key:
            raise KeyError(f"checkpoint has no '{wrapper_key}' entry; it has {sorted(checkpoint)}")
    state_dict = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if state_dict and all(k.startswith(DDP_PREFIX) for k in state_dict):
        state_dict = {k[len(DDP_PREFIX):]: v for k, v in state_dict.items()}
    if any(k.startswith(BACKBONE_PREFIX) for k in state_dict):  # a segmentor: keep its backbone
        state_dict = {k[len(BACKBONE_PREFIX):]: v for k, v in state_dict.items()
                      if k.startswith(BACKBONE_PREFIX)}
    return state_dict


def _source_grid(state_dict: Mapping[str, torch.Tensor], num_tokens: int) -> Tuple[int, int]:
    """Token grid a checkpoint's position embedding was trained on, read off its first filter."""
    for key, value in state_dict.items():
        if _FIRST_FILTER.match(key) and num_tokens % value.shape[0] == 0:
            return value.shape[0], num_tokens // value.shape[0]
    side = int(round(num_tokens ** 0.5))
    return side, side


def adapt_state_dict(state_dict: Mapping[str, torch.Tensor], model: nn.Module,
                     ) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
    """Fit a GFNet state dict to ``model``: resize filters and the position embedding to the
    model's grids; drop a classifier head the model lacks or has in another shape.

    Returns ``(state_dict, resized_keys, dropped_keys)``. Keys the model lacks and other shape
    differences are left for the caller to report.
    """
    target = model.state_dict()
    adapted, resized, dropped = {}, [], []
    for key, value in state_dict.items():
        want = target.get(key)
        if key.startswith(HEAD_PREFIX) and (want is None or want.shape != value.shape):
            dropped.append(key)
        elif want is None or want.shape == value.shape:
            adapted[key] = value
        elif key.endswith('complex_weight') and value.dim() == 4 and value.shape[2:] == want.shape[2:]:
            adapted[key] = resize_filter(value, want.shape[:2])
            resized.append(key)
        elif key == 'pos_embed' and value.shape[-1] == want.shape[-1]:
            adapted[key] = resize_pos_embed(value, model.pos_grid, _source_grid(state_dict, value.shape[1]))
            resized.append(key)
        else:
            adapted[key] = value
    return adapted, resized, dropped


@dataclass
class LoadReport:
    """What ``load_checkpoint`` did with each key."""
    loaded: List[str] = field(default_factory=list)
    resized: List[str] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)

    def summary(self) -> str:
        def names(keys):
            return ', '.join(keys[:6]) + (f', ... ({len(keys)} in all)' if len(keys) > 6 else '')
        lines = [f'loaded {len(self.loaded)} tensors']
        for label in ('resized', 'dropped', 'missing', 'unexpected'):
            keys = getattr(self, label)
            if keys:
                lines.append(f'{label} ({len(keys)}): {names(keys)}')
        return '; '.join(lines)


def fit_state_dict(checkpoint: Mapping, model: nn.Module, wrapper_key: str = None,
                   allow_mismatch: Tuple[str, ...] = ()) -> Tuple[Dict[str, torch.Tensor], LoadReport]:
    """The weights of ``checkpoint`` (any layout ``unwrap_state_dict`` knows) fitted to ``model``
    (``adapt_state_dict``), and a report; keys the model lacks stay in the state dict, as
    ``report.unexpected``.

    Raises ``ValueError`` when a tensor's shape cannot be adapted (e.g. GFNet-H-S weights into a
    GFNet-H-Ti model), naming the first keys, and when no weight of the model is in the file,
    so that a wrong file never turns into a silent random initialisation. Keys in
    ``allow_mismatch`` may differ in shape (timm adapts the first conv to ``in_chans`` itself).
    """
    state_dict, resized, dropped = adapt_state_dict(unwrap_state_dict(checkpoint, wrapper_key), model)
    target = model.state_dict()
    mismatched = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(target[k].shape)}'
                  for k, v in state_dict.items()
                  if k in target and v.shape != target[k].shape and k not in allow_mismatch]
    if mismatched:
        raise ValueError(f'checkpoint does not fit {type(model).__name__} ({len(mismatched)} shape '
                         'mismatches; is it for another architecture?): ' + '; '.join(mismatched[:3]))
    report = LoadReport(resized=resized, dropped=dropped,
                        loaded=[k for k in state_dict if k in target],
                        unexpected=[k for k in state_dict if k not in target])
    report.missing = [k for k in target if k not in state_dict]
    if not report.loaded:
        raise ValueError(f'no weight of {type(model).__name__} found in the checkpoint; its first keys '
                         f'are {list(state_dict)[:5]}')
    return state_dict, report


def load_checkpoint(model: nn.Module, checkpoint: Union[str, Mapping], strict: bool = False,
                    wrapper_key: str = None) -> LoadReport:
    """Load a GFNet checkpoint (a path as ``read_checkpoint`` takes, or a dict) into ``model``,
    adapting sizes (``fit_state_dict``, whose errors it raises); return a report."""
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = read_checkpoint(checkpoint)
    state_dict, report = fit_state_dict(checkpoint, model, wrapper_key)
    if strict and (report.missing or report.unexpected):
        raise ValueError('strict loading failed: ' + report.summary())
    model.load_state_dict(state_dict, strict=False)
    return report
