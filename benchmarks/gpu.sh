#!/usr/bin/env bash
# Every GPU benchmark in one go, in under 8 minutes on one GPU, then the CUDA tests, then one
# table of the figures. Logs of each benchmark go to $GPU_BENCH_LOGS (default benchmarks/gpu-logs).
#   bash benchmarks/gpu.sh            # on a machine with a CUDA device
#   GPU_BENCH_DEVICE=cpu bash benchmarks/gpu.sh --quick   # the script itself, checked on a CPU
# Each benchmark has its own time limit, so one that hangs cannot take the others' minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DEVICE=${GPU_BENCH_DEVICE:-cuda}
LOGS=${GPU_BENCH_LOGS:-benchmarks/gpu-logs}
QUICK=${1:-}
mkdir -p "$LOGS"

if [[ $DEVICE == cuda* ]] && ! "$PYTHON" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu.sh: error: no CUDA device (torch.cuda.is_available() is False); nothing was run" >&2
    exit 2
fi
"$PYTHON" -c "import torch; d = torch.device('$DEVICE'); print('device:', torch.cuda.get_device_name(d) if d.type == 'cuda' else 'cpu', '| torch', torch.__version__)"
date -u +"date: %Y-%m-%d %H:%M UTC"

# name, seconds allowed, command: prints the output and keeps it in $LOGS/name.txt
bench() {
    local name=$1 limit=$2
    shift 2
    echo "== $name ($*)"
    timeout "$limit" "$PYTHON" "$@" 2>&1 | tee "$LOGS/$name.txt"
    local status=${PIPESTATUS[0]}
    [[ $status == 0 ]] || echo "gpu.sh: $name ended with status $status (124: over its $limit s)" | tee -a "$LOGS/$name.txt"
}

bench train 110 benchmarks/bench_train_pipeline.py --device "$DEVICE" --epochs 3 $QUICK
bench augment 60 benchmarks/bench_augment.py --device "$DEVICE" --parts ab $QUICK
bench sampling 150 benchmarks/bench_sampling.py --device "$DEVICE" --quick
bench gradcam 30 benchmarks/bench_gradcam.py --device "$DEVICE" --batch-size 64 $QUICK
# The hyperprior alone, as this line was sized for (fitting the checkerboard too doubles its time).
bench codec 90 benchmarks/bench_codec.py --device "$DEVICE" --quick --learned learned-hyperprior
bench generators 150 benchmarks/bench_generators.py --device "$DEVICE" --fit-minutes 0.5 --threads 1

echo "== CUDA tests"
SYNTHMED_TEST_DEVICE=$DEVICE timeout 150 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 \
    | tee "$LOGS/tests.txt" | tail -3

# One table: the line of each log that carries its figure.
pick() { grep -E "$2" "$LOGS/$1.txt" 2>/dev/null | sed "s/^/$1 | /" || echo "$1 | (no figure: see $LOGS/$1.txt)"; }
echo
echo "== figures on $DEVICE"
{
    pick train '^\(a\) synthmed / pure'
    pick train '^\(b\) user loop'
    pick augment 'images/s|^(none|flips|medical|autoaugment|randaugment) '
    pick sampling '^ +(DDPM [0-9]+|DDIM 25|DPM-Solver\+\+ 25) '
    pick gradcam 'maps/s|ratio'
    pick codec '^learned|BD-rate'
    pick generators '(PASS|MISS)'
    pick tests '(passed|failed|skipped)'
} | cut -c1-160
