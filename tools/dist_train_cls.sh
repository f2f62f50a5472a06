#!/usr/bin/env bash
# Usage: tools/dist_train_cls.sh ARCH GPUS [train_cls.py flags]
# One process per GPU (on a machine without GPUs: per CPU process, gloo) via torchrun.
set -e
ARCH=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train_cls.py" \
    --arch "$ARCH" \
    "${@:3}"
