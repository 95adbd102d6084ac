#!/usr/bin/env bash
# The main pipeline end to end on the embedded sample dataset (what `make demo` runs):
# sample data -> synthetic images for the minority classes -> mixes -> classifiers trained
# on each scenario, 3 repeats each -> evaluation on the same real test split -> a table.
# Each step prints its output path on stdout, so steps chain with $(...).
set -euo pipefail
work=${SYNTHMED_DEMO_DIR:-demo-out}
repeats=${SYNTHMED_DEMO_REPEATS:-3}
mkdir -p "$work"
common=(--seed 0 --overwrite --quiet)

echo "== 1. sample data: brain-MRI-like phantoms in the MRI thesis's class proportions" >&2
data=$(synthmed sample-data -o "$work/data" --size 32 --scale 0.2 "${common[@]}")
synthmed info "$data"
synthmed plugins

echo "== 2. a class-conditional AC-GAN fitted on the train split; 60 images for each minority class" >&2
synth=$(synthmed generate "$data" -o "$work/synthetic" --generator acgan -g width=32 --fit-epochs 15 \
    --classes MildDemented,ModerateDemented --per-class 60 "${common[@]}")
synthmed info "$synth"

echo "== 3. mixes: 100 % real + synthetic for the minority classes only (as in the MRI thesis)" >&2
mixed=$(synthmed mix "$data" "$synth" -o "$work/mix-minority" \
    --synthetic MildDemented=40,ModerateDemented=40 "${common[@]}")

echo "== 4. classifiers (cnn-basic, ${repeats} repeats each): real, real + flips, real + synthetic" >&2
train=(--classifier cnn-basic --epochs 12 --repeats "$repeats" "${common[@]}")
run_real=$(synthmed train "$data" -o "$work/run-real" "${train[@]}")
run_flip=$(synthmed train "$data" -o "$work/run-real-hflip" --augment 'hflip(p=0.5)' "${train[@]}")
run_mix=$(synthmed train "$mixed" -o "$work/run-mix-minority" "${train[@]}")

echo "== 5. evaluation on the same real test split" >&2
reports=()
for run in "$run_real" "$run_flip" "$run_mix"; do
    reports+=("$(synthmed evaluate "$run" "$data" --split test -o "$work/report-$(basename "$run")" --overwrite --quiet)")
done

echo "== 6. what the classifier trained on the mix looks at (Grad-CAM, 8 test images)" >&2
synthmed gradcam "$run_mix" "$data" -o "$work/gradcam" --splits test --limit 8 "${common[@]}" >/dev/null

echo "== comparison (median [q1, q3] over ${repeats} repeats)" >&2
synthmed compare "${reports[@]}"
