#!/usr/bin/env bash
# The measurement of RESULTS.md: ETTh1 univariate, five horizons, S4D and
# ETSMLP forecasters with and without Lipschitz regularisation, on CPU
# (JAX). A small configuration sized for a shared 2-core machine.
# Usage:
#   bash applications/forecasting/measure_etth1.sh [out] [models] [lambdas]
# e.g. measure_etth1.sh runs/forecasting_etth1 "s4d etsmlp" "0 0.01"
set -u
out=${1:-runs/forecasting_etth1}
models=${2:-s4d etsmlp}
lambdas=${3:-0 0.01}
common=(--backend jax --data ETTh1 --features S --all-horizons
        --input-size 96 --hidden-dim 16 --num-layers 2 --d-state 16
        --batch-size 32 --epochs 4 --steps-per-epoch 100 --patience 2
        --learning-rate 3e-3 --verbose 2 --output-dir "$out")
for model in $models; do
  for lip in $lambdas; do
    echo "### $model lipschitz=$lip start $(date -u +%H:%M:%S)"
    python -m applications.forecasting "${common[@]}" --model "$model" \
      --lipschitz "$lip"
    echo "### $model lipschitz=$lip end $(date -u +%H:%M:%S)"
  done
done
python -m applications.forecasting.report "$out" --output "$out/table.md"
