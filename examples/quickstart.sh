#!/usr/bin/env bash
# What `make demo` runs: the MRI thesis's question on the embedded sample data, as one study.
# Does adding diffusion-model (ddpm) images to the two minority classes lower the test
# cross-entropy of cnn-basic, against the same real images alone, the same counts of duplicated
# real images and the same number of optimizer steps? The report first says whether the
# synthetic images pass the quality verdict, then gives 6 paired repeats and verdicts from
# Holm-corrected Wilcoxon tests. A rerun reuses the fitted generator and every finished repeat.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${SYNTHMED_DEMO_DIR:-demo-out}
mkdir -p "$work"

echo "== the study: cells, repeats and a calibrated time estimate" >&2
synthmed study "$here/mri-thesis/demo.toml" -o "$work/study" --dry-run

echo "== running it (progress on stderr; the verdict table at the end)" >&2
out=$(synthmed study "$here/mri-thesis/demo.toml" -o "$work/study")

echo "== $out/report.md" >&2
sed -n '/^## \(Synthetic image quality\|Verdicts\)/,/^## Figures/p' "$out/report.md"
