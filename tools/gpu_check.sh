#!/usr/bin/env bash
# Usage: make gpu-check   (or: bash tools/gpu_check.sh [OUT_DIR])
# On a machine with a CUDA GPU: the CUDA tests (pytest -m cuda; among them a Mask R-CNN GFNet-H-Ti
# training step at 1333x800 with --amp's AmpOptimWrapper, tests/test_gpu/test_cuda_detection.py) and
# the CUDA benchmark (AMP bf16 training, backbones and Semantic FPN segmentors, GFNet-H-Ti/S/B against
# Swin-T, PVTv2-b2 and ResNet-50 at 512 and 1024, batch 8) and the detection-size benchmark (1333x800,
# fp32: batch-1 inference and a batch-2 training step of the backbones and of Mask R-CNN on them,
# GFNet-H-Ti/S against Swin-T and PVTv2-b2), CSV + plot under OUT_DIR, every row naming the machine
# (CPU, ISA, GPU, versions). Uses the interpreter of tools/find_python.sh.
# A machine without a package registry gets the pure-Python packages as wheels in .whl/ (see README,
# "GPU check"): they are installed into a temporary folder first.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/find_python.sh
OUT=${1:-work_dirs/gpu_check}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/gfnet_site .whl/*.whl
    export PYTHONPATH=/tmp/gfnet_site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'gpu-check: no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
"$PYTHON" -m pytest -q -m cuda -p no:cacheprovider tests 2>&1 | tee "$OUT/tests.log"
"$PYTHON" tools/analysis/benchmark.py --device cuda --amp bf16 --train --parts backbone segmentor \
    --models gfnet-h-ti gfnet-h-s gfnet-h-b swin-t pvtv2-b2 resnet-50 --sizes 512 1024 --batch 8 \
    --repeats 10 --out "$OUT/benchmark" 2>&1 | tee "$OUT/benchmark.log"
"$PYTHON" tools/analysis/benchmark.py --detection --device cuda --models gfnet-h-ti gfnet-h-s swin-t pvtv2-b2 \
    --sizes 1333x800 --repeats 10 --out "$OUT/detection" 2>&1 | tee "$OUT/detection.log"
