#!/usr/bin/env bash
# The GPU figures of the README, in one run on a CUDA machine:
#   * eager vs deploy vs CUDA-graph outputs on the GPU (fp32, <= 1e-4);
#   * EfficientViT-M4 classifier, batch 2048, fp16 autocast: eager, deploy,
#     CUDA graph (images/s, batch-1 latency, peak memory), beside timm;
#   * the same at fp32 for the batch-1 latency;
#   * RetinaNet-M4 vs RetinaNet-R18 train steps, batch 16 at 800x1216, fp32
#     and AMP; RetinaNet-M4 training memory with and without with_cp;
#   * torch.compile throughput (last: compiling takes the longest).
#
#   RESULTS=work_dirs/gpu_suite benchmarks/gpu_suite.sh
#
# Each step has its own time limit and writes its log (and JSON where the
# tool has one) under $RESULTS, so a slow step cannot lose the others'
# figures; the summary lines are echoed as the steps finish.
set -u
cd "$(dirname "$0")/.."
OUT="${RESULTS:-work_dirs/gpu_suite}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONWARNINGS=ignore PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date +%T))"
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    grep -vE 'INFO|WARNING|Warning|warn\(' "$OUT/$name.log" | tail -n 25
    echo "--- $name: exit $rc"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
    --format=csv | tee "$OUT/gpu.txt"
"$PY" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'

step cuda_equivalence 60 "$PY" benchmarks/cuda_equivalence.py --arch m4
step m4_b2048_fp16 120 "$PY" tools/benchmark.py --arch m4 --device cuda \
    --amp --batch-size 2048 --mode eager deploy cudagraph --compare-timm \
    --json "$OUT/m4_b2048_fp16.json"
step m4_fp32_latency 90 "$PY" tools/benchmark.py --arch m4 --device cuda \
    --batch-size 64 --mode eager deploy cudagraph --compare-timm \
    --json "$OUT/m4_fp32.json"
step det_step_fp32 100 "$PY" benchmarks/train_step.py det --device cuda \
    --batch-size 16 --shape 800 1216
step det_step_amp 100 "$PY" benchmarks/train_step.py det --device cuda \
    --batch-size 16 --shape 800 1216 --amp
step det_with_cp 80 "$PY" benchmarks/train_step.py det --device cuda \
    --with-cp-figure
step runtime_breakdown_gpu 45 "$PY" tools/analysis/runtime_breakdown.py \
    configs/efficientvit_m4_in1k.py --device cuda --batch-size 256 \
    --deploy --out-dir "$OUT/runtime_breakdown"
step m4_b2048_compile 150 "$PY" tools/benchmark.py --arch m4 --device cuda \
    --amp --batch-size 2048 --mode deploy compile \
    --json "$OUT/m4_b2048_compile.json"
echo "=== done ($(date +%T))"
