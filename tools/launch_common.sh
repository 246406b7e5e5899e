# Sourced by tools/{dist,slurm}_{train,test}.sh: start tools/train.py or
# tools/test.py as several processes, with this checkout on PYTHONPATH.
#
#   torchrun_tool NPROC TOOL ARGS... -- EXTRA...   N processes on this machine
#   srun_tool PARTITION JOB TOOL ARGS... -- EXTRA...   one Slurm task per GPU
#
# ARGS come before the --launcher option, EXTRA (the user's own options)
# after it.
TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON=${PYTHON:-python}
export PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}"

usage() {  # usage ARGUMENTS...: print how to call the script and stop
    echo "usage: $0 $*" >&2
    exit 2
}

# _split ARGS... -- EXTRA...: fills the arrays HEAD and EXTRA
_split() {
    HEAD=()
    EXTRA=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do HEAD+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    EXTRA=("$@")
}

torchrun_tool() {
    local nproc=$1 tool=$2
    shift 2
    _split "$@"
    exec "$PYTHON" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${PORT:-29500}" --nproc_per_node="$nproc" \
        "$TOOLS_DIR/$tool" "${HEAD[@]}" --launcher pytorch "${EXTRA[@]}"
}

# GPUS (total, default 8), GPUS_PER_NODE (default min(GPUS, 8)),
# CPUS_PER_TASK (default 5) and SRUN_ARGS (extra srun flags) shape the job.
srun_tool() {
    local partition=$1 job=$2 tool=$3
    shift 3
    _split "$@"
    local gpus=${GPUS:-8}
    local per_node=${GPUS_PER_NODE:-$(( gpus < 8 ? gpus : 8 ))}
    # shellcheck disable=SC2086
    exec srun -p "$partition" --job-name="$job" --gres=gpu:"$per_node" \
        --ntasks="$gpus" --ntasks-per-node="$per_node" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 \
        ${SRUN_ARGS:-} \
        "$PYTHON" -u "$TOOLS_DIR/$tool" "${HEAD[@]}" --launcher=slurm \
        "${EXTRA[@]}"
}
