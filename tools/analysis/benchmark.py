"""Latency and peak memory of GFNet-H and its peers across input sizes, to a CSV and a plot. Every row
names the machine (CPU model, vector ISA in effect and the caps set, threads, torch/oneDNN/MKL versions).

    python tools/analysis/benchmark.py --sizes 224 512 1024 2048 --threads 2 --out work_dirs/benchmark/cpu
    python tools/analysis/benchmark.py --device cuda --amp bf16 --train --parts backbone segmentor
    python tools/analysis/benchmark.py --detection --threads 2      # 1333x800: backbones and Mask R-CNN,
                                                                    # batch-1 inference, batch-2 training
    ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 python tools/analysis/benchmark.py ...

Sizes are square sides (512) or WIDTHxHEIGHT (1333x800, as mmdet writes its scales).
"""
import argparse

import torch

from gfnet_seg.analysis import benchmark as bench


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', choices=list(bench.PEERS),
                        help=f"default: {' '.join(bench.DEFAULT_MODELS)} "
                             f"(--detection: {' '.join(bench.DETECTION_MODELS)})")
    parser.add_argument('--parts', nargs='+', choices=bench.PARTS,
                        help='the backbone alone, the Semantic FPN segmentor and/or the Mask R-CNN detector on '
                             f"it; default: backbone (--detection: {' '.join(bench.DETECTION_PARTS)})")
    parser.add_argument('--sizes', nargs='+', type=bench.parse_size,
                        help='square sides (512) or WIDTHxHEIGHT (1333x800); default: 224 512 1024 '
                             '(--detection: 1333x800)')
    parser.add_argument('--detection', action='store_true',
                        help='detection preset: 1333x800 against Swin-T and PVTv2-b2, the backbones and Mask '
                             'R-CNN on them, batch-1 inference and a batch-2 training step (--train and --batch '
                             'are ignored)')
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
    parser.add_argument('--det-config', default=bench.DET_CONFIG, help='neck and heads of the detectors')
    parser.add_argument('--out', default='work_dirs/benchmark/benchmark', help='writes OUT.csv and OUT.png')
    args = parser.parse_args(argv)
    if args.models is None:
        args.models = list(bench.DETECTION_MODELS if args.detection else bench.DEFAULT_MODELS)
    if args.parts is None:
        args.parts = list(bench.DETECTION_PARTS if args.detection else ['backbone'])
    if args.sizes is None:
        args.sizes = [bench.DETECTION_SIZE] if args.detection else [bench.parse_size(s) for s in (224, 512, 1024)]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = list(bench.DETECTION_RUNS) if args.detection else [dict(train=args.train, batch=args.batch)]
    rows = []
    for run in runs:
        rows += bench.benchmark(args.models, args.sizes, args.parts, args.device, args.amp, run['train'],
                                run['batch'], args.warmup, args.repeats, args.time_cap, not args.no_memory,
                                args.seg_config, args.det_config)
    bench.write_csv(rows, args.out + '.csv')
    modes = ' and '.join(f"{'train' if run['train'] else 'inference'} batch {run['batch']}" for run in runs)
    title = f"{args.device} {modes}, {args.amp or 'fp32'}"
    if args.device == 'cpu':
        title += f", {torch.get_num_threads()} threads, {rows[0]['isa'] if rows else ''}"
    bench.plot(rows, args.out + '.png', title)
    print(bench.summary(rows))
    print(f'wrote {args.out}.csv and {args.out}.png')


if __name__ == '__main__':
    main()
