#!/usr/bin/env bash
# Evaluate a checkpoint with N processes on this machine (torchrun; NCCL on
# GPUs, gloo without).
#
#   tools/dist_test.sh CONFIG CHECKPOINT N [test.py args...]
set -euo pipefail
. "$(dirname "$0")/launch_common.sh"
[ $# -ge 3 ] || usage "CONFIG CHECKPOINT NUM_PROCESSES [tools/test.py args...]"
torchrun_tool "$3" test.py "$1" "$2" -- "${@:4}"
