"""Export a GFNet segmentor (mmseg config) or classifier (timm name) to ONNX, checked in onnxruntime.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out model.onnx [--shape H W] [--dynamic]
        [--fft {native,matmul}] [--verify [IMAGE ...]] [--opset N] [--no-dynamo] [--with-preprocess]
        [--cfg-options k=v ...]
    python tools/deployment/pytorch2onnx.py gfnet_h_ti CHECKPOINT --out cls.onnx --shape 224 224 --verify

The file is written only when the export (and, with --verify, the comparison) succeeded.
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer, registers GFNetH)

import argparse

from mmengine.config import DictAction

from gfnet_seg.apis import exit_on_error
from gfnet_seg.deployment import FFT_NAMES
from gfnet_seg.deployment.export import DEFAULT_OPSET
from gfnet_seg.deployment.tool import export_and_verify


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='mmseg config file, or a timm name (gfnet_ti ... gfnet_h_b)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size traced (default: the config crop, or 224 224 for classifiers)')
    parser.add_argument('--dynamic', action='store_true', help='free height and width in the file')
    parser.add_argument('--fft', choices=FFT_NAMES, default='native',
                        help='global filter as ONNX DFT nodes (native) or as real matrix products (matmul)')
    parser.add_argument('--verify', nargs='*', metavar='IMAGE',
                        help='compare onnxruntime with PyTorch on random inputs and these images')
    parser.add_argument('--verify-sizes', type=int, nargs='+', metavar='H W',
                        help='sizes of the random inputs, as H W pairs (default: the traced shape; with '
                        '--dynamic also two larger ones, one not a multiple of 32)')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset')
    parser.add_argument('--dynamo', action=argparse.BooleanOptionalAction, default=True,
                        help='the torch.export-based exporter (default); --no-dynamo: the TorchScript-based one '
                        '(torch.jit.trace, as timm\'s onnx_export.py), which also writes DFT-17 (--opset 17)')
    parser.add_argument('--with-preprocess', action='store_true',
                        help='input raw uint8 RGB; channel order and normalisation inside the graph')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='config overrides (key=value); for a timm name, timm.create_model keyword '
                        'arguments, e.g. embed_dims=[16,32,48,64] depths=[1,1,1,1]')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_error():
        export_and_verify(args.model, args.checkpoint, args.out, shape=args.shape, dynamic=args.dynamic,
                          fft=args.fft, opset=args.opset, with_preprocess=args.with_preprocess,
                          options=args.cfg_options, verify=args.verify, verify_sizes=args.verify_sizes,
                          dynamo=args.dynamo)


if __name__ == '__main__':
    main()
