"""Latency and peak memory of GFNet-H and its peers across input sizes, to a CSV and a plot.

    python tools/analysis/benchmark.py --sizes 224 512 1024 2048 --threads 2 --out work_dirs/benchmark/cpu
    python tools/analysis/benchmark.py --device cuda --amp bf16 --train --parts backbone segmentor
"""
import argparse

import torch

from gfnet_seg.analysis import benchmark as bench


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', default=list(bench.DEFAULT_MODELS), choices=list(bench.PEERS))
    parser.add_argument('--parts', nargs='+', default=['backbone'], choices=bench.PARTS,
                        help='the backbone alone and/or the Semantic FPN segmentor on it')
    parser.add_argument('--sizes', nargs='+', type=int, default=[224, 512, 1024], help='square input sides')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', choices=list(bench.AMP_DTYPES), help='autocast dtype (default: float32)')
    parser.add_argument('--train', action='store_true', help='time forward + backward')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--threads', type=int, help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5, help='timed calls; the median is reported')
    parser.add_argument('--time-cap', type=float, default=60., help='skip a size whose first call takes longer (s)')
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory pass')
    parser.add_argument('--seg-config', default=bench.SEG_CONFIG, help='neck and head of the segmentors')
    parser.add_argument('--out', default='work_dirs/benchmark/benchmark', help='writes OUT.csv and OUT.png')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = bench.benchmark(args.models, args.sizes, args.parts, args.device, args.amp, args.train, args.batch,
                           args.warmup, args.repeats, args.time_cap, not args.no_memory, args.seg_config)
    bench.write_csv(rows, args.out + '.csv')
    title = f"{args.device} {'train' if args.train else 'inference'}, {args.amp or 'fp32'}, batch {args.batch}"
    if args.device == 'cpu':
        title += f', {torch.get_num_threads()} threads'
    bench.plot(rows, args.out + '.png', title)
    print(bench.summary(rows))
    print(f'wrote {args.out}.csv and {args.out}.png')


if __name__ == '__main__':
    main()
