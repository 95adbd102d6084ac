#!/usr/bin/env bash
# What `make demo` runs: the MRI thesis's question on the embedded sample data, as one study.
# Does adding AC-GAN images to the two minority classes lower the test cross-entropy of
# cnn-basic, against the same real images alone, the same counts of duplicated real images and
# the same number of optimizer steps? 6 paired repeats; verdicts from Holm-corrected Wilcoxon
# tests. A rerun reuses every finished repeat (OUT/cache).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${SYNTHMED_DEMO_DIR:-demo-out}
mkdir -p "$work"

echo "== the study: cells, repeats and a calibrated time estimate" >&2
synthmed study "$here/mri-thesis/demo.toml" -o "$work/study" --dry-run

echo "== running it (progress on stderr; the verdict table at the end)" >&2
out=$(synthmed study "$here/mri-thesis/demo.toml" -o "$work/study")

echo "== $out/report.md" >&2
sed -n '/^## Verdicts/,/^## Figures/p' "$out/report.md"
