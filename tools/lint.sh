#!/usr/bin/env bash
# Lint the whole tree as CI does (settings in setup.cfg): flake8, then
# isort and yapf in check mode. Exit status 1 on any finding.
#
#   tools/lint.sh          # check
#   tools/lint.sh --fix    # let isort and yapf rewrite the files, then check
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${EVIT_VENV:-.venv}/bin"
PATHS=(efficientvit_mm tools benchmarks tests configs setup.py)
if [ "${1:-}" = "--fix" ]; then
    "$BIN/isort" -q "${PATHS[@]}"
    "$BIN/yapf" -i -r -p "${PATHS[@]}"
fi
status=0
"$BIN/flake8" "${PATHS[@]}" || status=1
"$BIN/isort" --check-only --diff -q "${PATHS[@]}" || status=1
if ! out="$("$BIN/yapf" --diff -r -p "${PATHS[@]}")"; then
    printf '%s\n' "$out"
    status=1
fi
if [ "$status" = 0 ]; then
    echo "[lint] flake8, isort and yapf: clean"
else
    echo "[lint] findings above; 'tools/lint.sh --fix' rewrites what isort" \
        "and yapf can" >&2
fi
exit "$status"
