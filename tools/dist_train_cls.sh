#!/usr/bin/env bash
# Usage: tools/dist_train_cls.sh ARCH GPUS [train_cls.py flags]
# One process per GPU (on a machine without GPUs: per CPU process, gloo) via torchrun.
TOOLS=$(dirname "$0")
exec bash "$TOOLS/torchrun.sh" "$TOOLS/train_cls.py" "$2" --arch "$1" "${@:3}"
