#!/usr/bin/env bash
# Evaluate a checkpoint on a Slurm cluster: one task per GPU.
#
#   GPUS=8 tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
#
# Environment as for tools/slurm_train.sh.
set -euo pipefail
. "$(dirname "$0")/launch_common.sh"
[ $# -ge 4 ] || usage "PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py args...]"
srun_tool "$1" "$2" test.py "$3" "$4" -- "${@:5}"
