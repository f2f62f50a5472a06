"""Convert GFNet checkpoints: keep only the weights of a trusted file, or write timm's Hugging Face layout.

    python tools/convert_checkpoint.py gfnet-h-ti-official.pth checkpoints/gfnet-h-ti.pth
    python tools/convert_checkpoint.py checkpoints/gfnet-h-ti.pth gfnet-h-ti-hf --hf

Without ``--hf``: files such as DeiT-style training checkpoints also pickle the training arguments;
loading those runs arbitrary code, so gfnet_seg never does it implicitly. Run this once on a file
you trust; it writes ``{'model': weights}``.

With ``--hf``: DST becomes a folder in timm's Hugging Face layout (``config.json`` and
``model.safetensors``, as ``timm.models.save_for_hf`` writes them), which loads with
``timm.create_model('local-dir:DST', pretrained=True)`` or, pushed to the Hub, with
``'hf-hub:USER/REPO'``. SRC may be an official GFNet file, a ``tools/train_cls.py`` checkpoint
(``--key model_ema`` for its EMA weights), an mmengine segmentation checkpoint of a GFNetH
backbone, or a bare state dict (.pth or .safetensors). The architecture, input size, channels
and number of classes are read off the weights; ``--model`` and ``--img-size`` override them.
A segmentation backbone becomes a classifier without head (``num_classes=0``) whose final norm is
the backbone's LayerNorm of its last stage: its ``forward_features`` is the backbone's last
output, its ``features_only`` maps are the backbone's stage outputs before their LayerNorms.
"""
import argparse
import re
import sys
from typing import Dict, Tuple

import torch

import gfnet_seg  # noqa: F401  (registers the models in timm)
from gfnet_seg.fileio import IncompleteFileError, WriteError, exit_on_error
from gfnet_seg.models.checkpoint import (WRAPPER_KEYS, UnsafeCheckpointError, _source_grid,
                                         convert_trusted_checkpoint, load_checkpoint, read_checkpoint,
                                         unwrap_state_dict)
from gfnet_seg.models.gfnet import MODEL_NAMES, arch_settings

# The constructor defaults of the two families, to leave out of config.json what they already say.
_DEFAULTS = {'gfnet_ti': dict(patch_size=16, mlp_ratio=4.), 'gfnet_h_ti': dict(patch_size=4, mlp_ratio=4.)}


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _count(state_dict: Dict[str, torch.Tensor], pattern: str) -> int:
    return len({match.group(1) for key in state_dict for match in [re.match(pattern, key)] if match})


def infer_model(state_dict: Dict[str, torch.Tensor]) -> Tuple[str, dict]:
    """The timm model name and ``create_model`` arguments of a GFNet state dict, read off its shapes."""
    pyramid = 'patch_embed.0.proj.weight' in state_dict
    stem = state_dict.get('patch_embed.0.proj.weight' if pyramid else 'patch_embed.proj.weight')
    if stem is None or 'pos_embed' not in state_dict:
        raise ValueError(f'not a GFNet state dict (no patch embedding or position embedding); its first keys '
                         f'are {list(state_dict)[:5]}')
    patch_size = stem.shape[-1]
    grid = _source_grid(state_dict, state_dict['pos_embed'].shape[1])
    args = dict(img_size=(grid[0] * patch_size, grid[1] * patch_size), in_chans=stem.shape[1],
                num_classes=state_dict['head.weight'].shape[0] if 'head.weight' in state_dict else 0,
                patch_size=patch_size)
    if pyramid:
        stages = _count(state_dict, r'^blocks\.(\d+)\.')
        widths = dict(embed_dims=tuple(state_dict[f'patch_embed.{i}.proj.weight'].shape[0] for i in range(stages)),
                      depths=tuple(_count(state_dict, rf'^blocks\.{i}\.(\d+)\.') for i in range(stages)))
        args['mlp_ratio'] = state_dict['blocks.0.0.mlp.fc1.weight'].shape[0] / widths['embed_dims'][0]
        layer_scale = 'blocks.0.0.gamma' in state_dict
    else:
        widths = dict(embed_dim=stem.shape[0], depth=_count(state_dict, r'^blocks\.(\d+)\.'))
        args['mlp_ratio'] = state_dict['blocks.0.mlp.fc1.weight'].shape[0] / widths['embed_dim']
        layer_scale = False
    family = 'gfnet_h_ti' if pyramid else 'gfnet_ti'
    for name in MODEL_NAMES:  # a published architecture, or the family's first with explicit widths
        settings = arch_settings(name)
        if all(_as_tuple(settings.get(k)) == _as_tuple(v) for k, v in widths.items()):
            family = name
            break
    else:
        args.update(widths)
    if pyramid and not layer_scale:
        args['layer_scale_init'] = None
    defaults = _DEFAULTS['gfnet_h_ti' if pyramid else 'gfnet_ti']
    return family, {k: v for k, v in args.items() if defaults.get(k, object()) != v}


def _backbone_norm_as_final_norm(state_dict: Dict[str, torch.Tensor]) -> str:
    """A segmentation backbone has a LayerNorm per output (``norm0``..``norm3``) and no final norm:
    the last stage's becomes it. Returns the key taken, or ''."""
    if 'norm.weight' in state_dict or 'patch_embed.0.proj.weight' not in state_dict:
        return ''
    last = _count(state_dict, r'^blocks\.(\d+)\.') - 1
    if f'norm{last}.weight' not in state_dict:
        return ''
    for name in ('weight', 'bias'):
        state_dict[f'norm.{name}'] = state_dict[f'norm{last}.{name}']
    return f'norm{last}'


def read_weights(path: str, key: str = None) -> Dict[str, torch.Tensor]:
    """The weights of ``path``, read safely; a file that needs unpickling is read as trusted (the
    contract of this tool), with a note."""
    try:
        checkpoint = read_checkpoint(path)
    except UnsafeCheckpointError:
        print(f'note: {path} holds Python objects besides tensors; reading it as a trusted file', file=sys.stderr)
        checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    return unwrap_state_dict(checkpoint, key)


def convert_to_hf(src: str, dst: str, key: str = None, model_name: str = None, img_size: int = None) -> str:
    """Write ``src``'s weights as timm's Hugging Face layout into the folder ``dst``; returns a summary."""
    import timm
    from timm.models import save_for_hf

    state_dict = read_weights(src, key)
    final_norm = _backbone_norm_as_final_norm(state_dict)
    name, args = infer_model(state_dict)
    if model_name:
        name = model_name
    if img_size:
        args['img_size'] = (img_size, img_size)
    model = timm.create_model(name, **args).eval()
    report = load_checkpoint(model, state_dict)
    missing = [k for k in report.missing if k != 'norm.weight' and k != 'norm.bias']
    if missing or report.dropped:
        raise ValueError(f'{src} does not hold all the weights of {name}{args}: {report.summary()}')
    save_for_hf(model, dst, safe_serialization=True)
    # The written folder must rebuild the same model: check it before saying so.
    reloaded = timm.create_model(f'local-dir:{dst}', pretrained=True)
    written = reloaded.state_dict()
    if written.keys() != model.state_dict().keys() or not all(
            torch.equal(written[k], v) for k, v in model.state_dict().items()):
        raise RuntimeError(f'{dst} does not reload into the model it was written from')
    notes = [f'{name} {args}', report.summary()]
    if final_norm:
        notes.append(f'backbone {final_norm} became the final norm')
    return '; '.join(notes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='checkpoint to convert (trusted, without --hf)')
    parser.add_argument('dst', help="output: a file {'model': state_dict}, or with --hf a folder")
    parser.add_argument('--key', choices=WRAPPER_KEYS, default=None,
                        help='which weights to keep when the file has several (default: the first found)')
    parser.add_argument('--hf', action='store_true',
                        help="write timm's Hugging Face layout (config.json + model.safetensors) into the folder dst")
    parser.add_argument('--model', default=None, choices=MODEL_NAMES,
                        help='with --hf: the timm model name (default: read off the weights)')
    parser.add_argument('--img-size', type=int, default=None,
                        help='with --hf: the input size to build the model for (default: the weights\' own)')
    args = parser.parse_args(argv)
    if not args.hf and (args.model or args.img_size):
        parser.error('--model and --img-size go with --hf')
    with exit_on_error((FileNotFoundError, IncompleteFileError, WriteError, ValueError, KeyError)):
        if args.hf:
            summary = convert_to_hf(args.src, args.dst, args.key, args.model, args.img_size)
            print(f'wrote {args.dst}/config.json and model.safetensors: {summary}')
        else:
            count = convert_trusted_checkpoint(args.src, args.dst, args.key)
            print(f'wrote {count} tensors to {args.dst}')


if __name__ == '__main__':
    main()
