#!/usr/bin/env bash
# Set up the pinned efficientvit_mm stack in a virtual environment.
#
#   tools/setup_env.sh            # creates ./.venv (or $EVIT_VENV) and installs everything
#
# Idempotent: a second run checks a stamp and the imports, and returns in seconds.
# mmcv 2.1.0 has no wheel for torch 2.14, so it is built from source with its compiled
# ops once per (torch, python, ops flavour) and the wheel is cached under
# ${EVIT_CACHE:-~/.cache/efficientvit_mm}; pip's own wheel cache is bypassed because it
# would happily reuse a build made against another torch.
#
# Environment knobs:
#   EVIT_VENV       virtual environment to create/use        (default: <repo>/.venv)
#   EVIT_PYTHON     interpreter used to create it             (default: python3)
#   EVIT_CACHE      where built mmcv wheels and our CPU kernels are kept (default: ~/.cache/efficientvit_mm)
#   EVIT_MMCV_CUDA  auto | 1 | 0: build mmcv's CUDA ops        (default: auto = torch has CUDA,
#                   nvcc exists and a GPU is visible; 1 forces it, e.g. on a GPU-less build host,
#                   with TORCH_CUDA_ARCH_LIST naming the target GPUs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EVIT_VENV:-$ROOT/.venv}"
PYTHON_BIN="${EVIT_PYTHON:-python3}"
CACHE="${EVIT_CACHE:-$HOME/.cache/efficientvit_mm}"
MMCV_VERSION=2.1.0

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    "$PYTHON_BIN" -m venv "$VENV" || die "could not create a venv with $PYTHON_BIN (install python3-venv)"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
CONSTRAINTS="$ROOT/requirements/constraints.txt"

# ---- fast path: nothing changed since the last successful run --------------------------
stamp_inputs() {
    cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh"
    echo "cuda=${EVIT_MMCV_CUDA:-auto}"
}
STAMP_FILE="$VENV/.efficientvit_mm_setup"
STAMP="$(stamp_inputs | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$STAMP" ] &&
    "$PY" -c "import mmcv._ext, mmdet, mmseg, mmpretrain, mmdeploy, onnxruntime, efficientvit_mm, flake8, isort, mim, pandas, seaborn, psutil
from efficientvit_mm.deploy import native; assert native.load(build_missing=False)" >/dev/null 2>&1; then
    say "environment $VENV is up to date"
    exit 0
fi

# ---- 1. torch and the other packages mmcv is compiled against ------------------------
say "installing torch, mmengine and build tools (pinned in requirements/)"
"${PIP[@]}" install -q "setuptools>=77,<81" wheel
"${PIP[@]}" install -q -r "$ROOT/requirements/base.txt" -c "$CONSTRAINTS"

# ---- 2. mmcv 2.1.0 with compiled ops, cached per torch version --------------------------
mmcv_ok() {
    "$PY" - <<'EOF' >/dev/null 2>&1
import mmcv, mmcv._ext
assert mmcv.__version__ == '2.1.0'
EOF
}

read -r TORCH_VERSION PY_TAG HAS_CUDA_TORCH GPU_ARCHS < <("$PY" - <<'EOF'
import sys, torch
archs = ';'.join(sorted({'%d.%d' % torch.cuda.get_device_capability(i)
                         for i in range(torch.cuda.device_count())})) if torch.cuda.is_available() else '-'
print(torch.__version__, 'cp%d%d' % sys.version_info[:2], int(torch.version.cuda is not None), archs)
EOF
)

WANT_CUDA=0
case "${EVIT_MMCV_CUDA:-auto}" in
    1) WANT_CUDA=1 ;;
    0) WANT_CUDA=0 ;;
    auto)
        if [ "$HAS_CUDA_TORCH" = 1 ] && command -v nvcc >/dev/null 2>&1 && [ "$GPU_ARCHS" != "-" ]; then
            WANT_CUDA=1
        elif [ "$HAS_CUDA_TORCH" = 1 ] && command -v nvcc >/dev/null 2>&1; then
            say "torch has CUDA and nvcc exists, but no GPU is visible: building CPU ops only"
            say "(set EVIT_MMCV_CUDA=1 and TORCH_CUDA_ARCH_LIST to build CUDA ops for another machine)"
        fi ;;
    *) die "EVIT_MMCV_CUDA must be auto, 0 or 1 (got '${EVIT_MMCV_CUDA}')" ;;
esac
if [ "$WANT_CUDA" = 1 ]; then
    command -v nvcc >/dev/null 2>&1 || die "EVIT_MMCV_CUDA=1 but nvcc is not on PATH"
    [ "$HAS_CUDA_TORCH" = 1 ] || die "EVIT_MMCV_CUDA=1 but torch $TORCH_VERSION has no CUDA"
    if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
        [ "$GPU_ARCHS" != "-" ] || die "no GPU visible: set TORCH_CUDA_ARCH_LIST (e.g. '9.0') for EVIT_MMCV_CUDA=1"
        export TORCH_CUDA_ARCH_LIST="$GPU_ARCHS"
    fi
    FLAVOUR="cuda-$(echo "$TORCH_CUDA_ARCH_LIST" | tr ' ;' '__')"
else
    FLAVOUR="cpu"
fi
WHEEL_DIR="$CACHE/mmcv-$MMCV_VERSION/torch-$TORCH_VERSION-$PY_TAG-$FLAVOUR"
MMCV_FLAVOUR_FILE="$VENV/.efficientvit_mm_mmcv"

if mmcv_ok && [ -f "$MMCV_FLAVOUR_FILE" ] && [ "$(cat "$MMCV_FLAVOUR_FILE")" = "$WHEEL_DIR" ]; then
    say "mmcv $MMCV_VERSION with ops already installed ($FLAVOUR, torch $TORCH_VERSION)"
else
    WHEEL="$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
    if [ -z "$WHEEL" ]; then
        mkdir -p "$WHEEL_DIR"
        LOG="$WHEEL_DIR/build.log"
        say "building mmcv $MMCV_VERSION with ops ($FLAVOUR) against torch $TORCH_VERSION"
        if [ "$WANT_CUDA" = 1 ]; then
            say "this takes about 17 minutes on 2 cores (CUDA ops, one arch); log: $LOG"
        else
            say "this takes about 6 minutes on 2 cores (CPU ops); log: $LOG"
        fi
        SRC_DIR="$WHEEL_DIR/src"
        rm -rf "$SRC_DIR" "$WHEEL_DIR/tmp"
        mkdir -p "$SRC_DIR"
        "${PIP[@]}" download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$SRC_DIR"
        tar -xzf "$SRC_DIR/mmcv-$MMCV_VERSION.tar.gz" -C "$SRC_DIR"
        # torch >= 2.10 headers need C++20; mmcv 2.1.0's setup.py hard-codes -std=c++14/17,
        # which comes after any CXXFLAGS on the compiler line, so the flag is patched in place.
        sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$SRC_DIR/mmcv-$MMCV_VERSION/setup.py"
        (
            export MMCV_WITH_OPS=1 FORCE_CUDA="$WANT_CUDA" MAX_JOBS="${MAX_JOBS:-$(nproc)}"
            if [ "$WANT_CUDA" = 1 ]; then
                # nvcc may be a wrapper script outside its toolkit (then torch guesses CUDA_HOME
                # wrong and host files miss the runtime headers): ask nvcc where its toolkit is.
                if [ -z "${CUDA_HOME:-}" ]; then
                    CUDA_HOME="$(nvcc -dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n1)"
                    [ -z "$CUDA_HOME" ] || export CUDA_HOME="$(cd "$CUDA_HOME" && pwd)"
                fi
                # A minimal toolkit may lack the library headers (cusparse.h, cublas_v2.h, ...)
                # that torch's headers include; pip's CUDA torch ships them in
                # site-packages/nvidia/*/include. CPATH is searched after the toolkit's -I.
                NV_INCLUDES="$("$PY" -c 'import glob, os, torch; print(":".join(sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), "nvidia", "*", "include")))))')"
                [ -z "$NV_INCLUDES" ] || export CPATH="${CPATH:+$CPATH:}$NV_INCLUDES"
                say "CUDA toolkit: ${CUDA_HOME:-as torch finds it}; archs: $TORCH_CUDA_ARCH_LIST"
            fi
            # --no-build-isolation: with isolation mmcv silently builds without mmcv._ext.
            # --no-cache-dir: pip's wheel cache would reuse a build made against another torch.
            "${PIP[@]}" wheel -v --no-build-isolation --no-deps --no-cache-dir \
                "$SRC_DIR/mmcv-$MMCV_VERSION" -w "$WHEEL_DIR/tmp" >"$LOG" 2>&1
        ) &
        BUILD_PID=$!
        START=$(date +%s)
        while kill -0 "$BUILD_PID" 2>/dev/null; do
            sleep 20
            STEP="$(grep -oE '\[[0-9]+/[0-9]+\]' "$LOG" 2>/dev/null | tail -n1 || true)"
            say "mmcv build: $(( $(date +%s) - START ))s elapsed, ninja step ${STEP:-(preparing)}"
        done
        wait "$BUILD_PID" || { tail -n 40 "$LOG" >&2; die "mmcv build failed, see $LOG"; }
        mv "$WHEEL_DIR"/tmp/mmcv-"$MMCV_VERSION"-*.whl "$WHEEL_DIR"/
        rm -rf "$WHEEL_DIR/tmp" "$SRC_DIR"
        WHEEL="$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"
        say "mmcv wheel cached at $WHEEL"
    else
        say "using cached mmcv wheel $WHEEL"
    fi
    "${PIP[@]}" install -q --force-reinstall --no-deps "$WHEEL"
    mmcv_ok || die "mmcv $MMCV_VERSION installed but mmcv._ext does not import (delete $WHEEL_DIR and rerun)"
    echo "$WHEEL_DIR" >"$MMCV_FLAVOUR_FILE"
fi

# ---- 3. the OpenMMLab toolboxes, test tools and this package ---------------------------
say "installing mmdet, mmsegmentation, mmpretrain, their clients' extras, test tools and linters"
"${PIP[@]}" install -q -r "$ROOT/requirements/toolboxes.txt" -r "$ROOT/requirements/extras.txt" \
    -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/lint.txt" -c "$CONSTRAINTS"
# ---- 4. deployment: onnx, onnxruntime, mmdeploy (see requirements/mmdeploy.txt) ---
say "installing onnx, onnxruntime and mmdeploy"
"${PIP[@]}" install -q -r "$ROOT/requirements/deploy.txt" -c "$CONSTRAINTS"
"${PIP[@]}" install -q --no-deps -r "$ROOT/requirements/mmdeploy.txt"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

# ---- 5. our CPU kernels (deploy/csrc), compiled against this torch, cached by source --
say "building efficientvit_mm's CPU kernels (about 40 s on 2 cores, once per torch, CPU and source)"
"$PY" "$ROOT/tools/build_kernels.py" || die "could not build efficientvit_mm's CPU kernels (see above)"

"$PY" - <<'EOF' || die "the installed stack does not import"
import mmcv, mmcv._ext, mmdet, mmseg, mmpretrain, mmengine, torch, numpy
import mim, pandas, psutil, requests, seaborn  # the clients' extras
import mmdeploy, onnxruntime
import efficientvit_mm
print('[setup] torch %s | mmengine %s | mmcv %s (ops) | mmdet %s | mmseg %s | mmpretrain %s | numpy %s'
      % (torch.__version__, mmengine.__version__, mmcv.__version__, mmdet.__version__,
         mmseg.__version__, mmpretrain.__version__, numpy.__version__))
EOF
echo "$STAMP" >"$STAMP_FILE"
say "done: activate with 'source $VENV/bin/activate'"
