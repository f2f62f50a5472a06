#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG GPUS [train.py flags]
# One process per GPU via torchrun (on a machine without GPUs: per CPU process, gloo; override
# SyncBN with --cfg-options model.decode_head.norm_cfg.type=BN).
TOOLS=$(dirname "$0")
exec bash "$TOOLS/torchrun.sh" "$TOOLS/train.py" "$2" "$1" --launcher pytorch "${@:3}"
