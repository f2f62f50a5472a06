"""Keep only the weights of a trusted checkpoint that torch.load(weights_only=True) refuses.

    python tools/convert_checkpoint.py gfnet-h-ti-official.pth checkpoints/gfnet-h-ti.pth

Files such as DeiT-style training checkpoints also pickle the training arguments; loading those
runs arbitrary code, so gfnet_seg never does it implicitly. Run this once on a file you trust.
"""
import argparse

import gfnet_seg  # noqa: F401
from gfnet_seg.models.checkpoint import WRAPPER_KEYS, convert_trusted_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='trusted checkpoint to convert')
    parser.add_argument('dst', help="output file: {'model': state_dict}")
    parser.add_argument('--key', choices=WRAPPER_KEYS, default=None,
                        help='which weights to keep when the file has several (default: the first found)')
    args = parser.parse_args(argv)
    count = convert_trusted_checkpoint(args.src, args.dst, args.key)
    print(f'wrote {count} tensors to {args.dst}')


if __name__ == '__main__':
    main()
