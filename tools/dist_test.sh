#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py flags]
# One process per GPU via torchrun (on a machine without GPUs: per CPU process, gloo).
TOOLS=$(dirname "$0")
exec bash "$TOOLS/torchrun.sh" "$TOOLS/test.py" "$3" "$1" "$2" --launcher pytorch "${@:4}"
