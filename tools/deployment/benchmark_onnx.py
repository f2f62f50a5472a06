"""CPU latency of GFNet-H-Ti exported to ONNX (both global filters) against PyTorch eager.

    python tools/deployment/benchmark_onnx.py --sizes 512 1024 --parts backbone segmentor --threads 2
"""
import gfnet_seg  # noqa: F401  (first: installs the mmcv-lite layer, registers GFNetH)

import argparse

from gfnet_seg.deployment import FFT_NAMES
from gfnet_seg.deployment.benchmark import PARTS, benchmark, format_table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--sizes', type=int, nargs='+', default=[512, 1024], help='square input sides')
    parser.add_argument('--parts', nargs='+', choices=PARTS, default=list(PARTS))
    parser.add_argument('--fft', nargs='+', choices=FFT_NAMES, default=list(FFT_NAMES))
    parser.add_argument('--threads', type=int, default=2, help='intra-op threads of PyTorch and onnxruntime')
    parser.add_argument('--optimization', choices=['disable', 'basic', 'extended', 'all'], default='all',
                        help='onnxruntime graph optimisation level')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5, help='timed rounds; the median is reported')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rows = benchmark(args.sizes, args.parts, args.fft, args.threads, args.optimization, args.warmup, args.repeats)
    print(format_table(rows))


if __name__ == '__main__':
    main()
