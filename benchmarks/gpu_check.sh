#!/usr/bin/env bash
# GPU check: install the CUDA builds, run the layer tests on the GPU per
# backend, benchmark blocks at GPU sizes and every scan method, and write
# Markdown rows for benchmarks/RESULTS.md. Designed to finish in under ten
# minutes: every step has its own time limit, capped by what is left of the
# whole run's budget. Everything lands under $OUT (or gpu_check_out/).
#
# Usage:
#   bash benchmarks/gpu_check.sh                 # on a CUDA machine
#   bash benchmarks/gpu_check.sh --dry-run       # CPU, tiny sizes, no installs
#   bash benchmarks/gpu_check.sh --backends jax,torch --no-install
#   bash benchmarks/gpu_check.sh --dry-run --steps tests,rows   # some steps
# Steps: install, devices, tests, run, scan, selective, rows.
set -u

DRY_RUN=0
INSTALL=1
BACKENDS="jax,torch,tensorflow"
STEPS="install,devices,tests,run,scan,selective,rows"
BUDGET=${GPU_CHECK_BUDGET:-570}  # seconds for the whole run
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1; INSTALL=0 ;;
    --no-install) INSTALL=0 ;;
    --backends) BACKENDS="$2"; shift ;;
    --backends=*) BACKENDS="${1#*=}" ;;
    --steps) STEPS="$2"; shift ;;
    --steps=*) STEPS="${1#*=}" ;;
    --budget) BUDGET="$2"; shift ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT_DIR=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT_DIR/logs" "$OUT_DIR/json"
PY=${PYTHON:-python}
START=$(date +%s)
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# TensorFlow must not grab the whole GPU before JAX or torch run.
export TF_FORCE_GPU_ALLOW_GROWTH=true XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "$DRY_RUN" = 1 ]; then
  export CUDA_VISIBLE_DEVICES=""
fi

SUMMARY="$OUT_DIR/summary.md"
: > "$SUMMARY"
FAILED=0

# step NAME SECONDS COMMAND...: runs COMMAND under `timeout`, capped by the
# budget left; logs to $OUT_DIR/logs/NAME.log; records the outcome.
step() {
  local name=$1 limit=$2; shift 2
  case ",$STEPS," in *",${name%%_*},"*) ;; *) return 0 ;; esac
  local left=$(( BUDGET - ($(date +%s) - START) - 5 ))
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$limit" -le 5 ]; then
    echo "| $name | skipped (budget spent) | 0 |" >> "$SUMMARY"
    echo "[gpu_check] $name: skipped, budget spent"
    return 0
  fi
  local t0=$(date +%s)
  echo "[gpu_check] $name (limit ${limit}s)"
  timeout --kill-after=5 "$limit" "$@" > "$OUT_DIR/logs/$name.log" 2>&1
  local rc=$?
  local status=ok
  if [ $rc = 124 ] || [ $rc = 137 ]; then status="timed out"; FAILED=1
  elif [ $rc != 0 ]; then status="failed (rc $rc)"; FAILED=1; fi
  echo "| $name | $status | $(( $(date +%s) - t0 )) |" >> "$SUMMARY"
  echo "[gpu_check] $name: $status"
  tail -n 3 "$OUT_DIR/logs/$name.log"
}

# --- Sizes -----------------------------------------------------------------
if [ "$DRY_RUN" = 1 ]; then
  RUN_LENGTHS=32,64; RUN_BATCHES=2; RUN_WIDTHS="8"; RUN_MODELS=s4d,mamba
  SCAN_LENGTHS="16 32"; SCAN_CHANNELS=4; SCAN_BATCH=1
  T_TESTS=120; T_RUN=120; T_SCAN=150; T_DEVICES=120
  # Collect the layer tests only (their run on CPU is the regular suite's).
  PYTEST_MODE=(--collect-only -q)
else
  RUN_LENGTHS=1024,2048,4096,8192,16384; RUN_BATCHES=8,32
  RUN_WIDTHS="256 1024"; RUN_MODELS=s4d,etsmlp,mamba,transformer
  SCAN_LENGTHS="1024 2048 4096 8192 16384"; SCAN_CHANNELS=1024; SCAN_BATCH=8
  T_TESTS=45; T_RUN=30; T_SCAN=20; T_DEVICES=40
  PYTEST_MODE=(-q -x -p no:cacheprovider)
fi
LAYER_TESTS=(tests/test_s4d.py tests/test_ces.py tests/test_etsmlp_block.py
  tests/test_selective_ssm.py tests/test_mamba_block.py
  tests/test_selective_scan.py tests/test_scan.py)

# --- Install ---------------------------------------------------------------
CONSTRAINTS="$ROOT/.ci/constraints.txt"
if [ "$INSTALL" = 1 ]; then
  # PyPI's Linux torch wheel is the CUDA build; jax[cuda12] and
  # tensorflow[and-cuda] pull the CUDA libraries as wheels. Versions follow
  # .ci/constraints.txt so the CPU and GPU runs use the same releases.
  step install 240 "$PY" -m pip install -q -c "$CONSTRAINTS" \
    "jax[cuda12]" "torch" "tensorflow[and-cuda]"
fi

# --- Device ----------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  else
    echo "no nvidia-smi (CPU)"
  fi
} > "$OUT_DIR/device.txt" 2>&1
DEVICE=""
if command -v nvidia-smi > /dev/null; then
  DEVICE=$(sed -n 2p "$OUT_DIR/device.txt" | cut -d, -f1)
fi
# What each backend computes on (a GPU run that fell back to CPU shows here).
step devices "$T_DEVICES" "$PY" - "$BACKENDS" <<'PYEOF'
import sys
for name in sys.argv[1].split(","):
    if name == "jax":
        import jax; print("jax", jax.__version__, jax.devices())
    elif name == "torch":
        import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())
    elif name == "tensorflow":
        import tensorflow as tf; print("tensorflow", tf.__version__, tf.config.list_physical_devices("GPU"))
PYEOF

# --- Per backend: layer tests, block benchmark, scan methods ---------------
for backend in ${BACKENDS//,/ }; do
  export KERAS_BACKEND=$backend
  step "tests_$backend" "$T_TESTS" "$PY" -m pytest "${PYTEST_MODE[@]}" \
    "${LAYER_TESTS[@]}"
  for width in $RUN_WIDTHS; do
    step "run_${backend}_d$width" "$T_RUN" "$PY" benchmarks/run.py \
      --models "$RUN_MODELS" --lengths "$RUN_LENGTHS" \
      --batches "$RUN_BATCHES" --hidden-dim "$width" --repeats 2 \
      --max-step-seconds 2 --sweep-timeout "$T_RUN" --no-isolate \
      --output "$OUT_DIR/json/run_${backend}_d$width.json"
  done
  step "scan_$backend" "$T_SCAN" "$PY" benchmarks/bench_scan.py \
    --lengths $SCAN_LENGTHS --batch "$SCAN_BATCH" \
    --channels "$SCAN_CHANNELS" --repeats 2 --max-seconds 2 \
    --output "$OUT_DIR/json/scan_$backend.json"
  step "selective_$backend" "$T_SCAN" "$PY" benchmarks/bench_scan.py \
    --op selective --lengths $SCAN_LENGTHS --batch "$SCAN_BATCH" \
    --channels "$SCAN_CHANNELS" --d-state 16 --repeats 2 --max-seconds 2 \
    --output "$OUT_DIR/json/selective_scan_$backend.json"
done
unset KERAS_BACKEND

# --- Rows for RESULTS.md ---------------------------------------------------
step rows 30 "$PY" benchmarks/gpu_rows.py "$OUT_DIR/json" \
  ${DEVICE:+--device-name "$DEVICE"}
cp "$OUT_DIR/logs/rows.log" "$OUT_DIR/RESULTS_rows.md" 2> /dev/null
{
  echo
  echo "| step | status | seconds |"
  echo "|---|---|---:|"
} > "$SUMMARY.head"
cat "$SUMMARY.head" "$SUMMARY" > "$SUMMARY.tmp" && mv "$SUMMARY.tmp" "$SUMMARY"
rm -f "$SUMMARY.head"
echo "[gpu_check] total $(( $(date +%s) - START ))s; summary:"
cat "$SUMMARY"
echo "[gpu_check] rows for benchmarks/RESULTS.md: $OUT_DIR/RESULTS_rows.md"
exit $FAILED
