#!/usr/bin/env bash
# The main pipeline end to end on the embedded sample dataset (what `make demo` runs).
# Each step prints its output path on stdout, so steps chain with $(...).
set -euo pipefail
work=${SYNTHMED_DEMO_DIR:-demo-out}
mkdir -p "$work"

data=$(synthmed sample-data -o "$work/data" --size 64 --scale 0.2 --seed 0 --overwrite)
synthmed info "$data"
synthmed plugins
