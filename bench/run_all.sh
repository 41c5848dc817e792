#!/bin/sh
# Run both benchmarks; results go to bench/results/. Arguments go to bench_kernels.py,
# $TRAINING_ARGS to bench_training.py, e.g.
#   sh bench/run_all.sh --threads 2
#   TRAINING_ARGS="--repeats 8" sh bench/run_all.sh
set -e
PY=${PY:-.venv/bin/python}
cd "$(dirname "$0")/.."
"$PY" bench/bench_kernels.py "$@"
# shellcheck disable=SC2086
"$PY" bench/bench_training.py $TRAINING_ARGS
