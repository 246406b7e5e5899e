#!/usr/bin/env bash
# Train with N processes on this machine (torchrun, the `pytorch` launcher):
# one per GPU with NCCL, or N CPU processes with gloo when there is no GPU.
#
#   tools/dist_train.sh CONFIG N [train.py args...]
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 tools/dist_train.sh CONFIG 8
#
# Environment: NNODES, NODE_RANK, MASTER_ADDR, PORT (default 29500), PYTHON.
set -euo pipefail
. "$(dirname "$0")/launch_common.sh"
[ $# -ge 2 ] || usage "CONFIG NUM_PROCESSES [tools/train.py args...]"
torchrun_tool "$2" train.py "$1" -- "${@:3}"
