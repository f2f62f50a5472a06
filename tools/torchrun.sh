#!/usr/bin/env bash
# Usage: tools/torchrun.sh SCRIPT PROCS [script flags]
# Shared by the dist_*.sh launchers: PROCS processes of SCRIPT via torchrun, one per GPU (on a
# machine without GPUs: CPU processes with gloo). NNODES, NODE_RANK, PORT, MASTER_ADDR and PYTHON
# are read from the environment, as in mmseg's scripts; PYTHON defaults to the project's .venv.
set -e
SCRIPT=$1
PROCS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
source "$(dirname "$0")/find_python.sh"

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$PROCS" \
    --master_port="$PORT" \
    "$SCRIPT" "${@:3}"
