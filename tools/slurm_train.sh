#!/usr/bin/env bash
# Train on a Slurm cluster: one task per GPU, the `slurm` launcher.
#
#   GPUS=16 tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args...]
#
# Environment: GPUS (total, default 8), GPUS_PER_NODE (default 8),
# CPUS_PER_TASK (default 5), SRUN_ARGS (extra srun flags), PYTHON.
set -euo pipefail
. "$(dirname "$0")/launch_common.sh"
[ $# -ge 4 ] || usage "PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py args...]"
srun_tool "$1" "$2" train.py "$3" --work-dir="$4" -- "${@:5}"
