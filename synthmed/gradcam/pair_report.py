"""The pairs part of a Grad-CAM report: pairs.csv, one figure per synthetic pair, and the
per-class summary of how alike the maps of each pair are (`job` is the command's GradcamPlan)."""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from synthmed.gradcam.pairs import TOP_FRACTION, pearson, summarize_pairs, top_region_iou

PAIR_COLUMNS = ("kind", "label", "target", "real_id", "other_id", "pearson", "iou_top20", "figure")


def write_pairs(job: Any, tmp: Path, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from safetensors.numpy import load_file

    from synthmed.gradcam.figures import pair_png

    maps_of = {record["id"]: record["maps"] for record in records}
    target_class = {(record["id"], record["target"]): record["target_class"] for record in records}
    results: list[dict[str, Any]] = []
    for pair in job.pairs:
        first = load_file(str(tmp / maps_of[pair.first["id"]]))
        second = load_file(str(tmp / maps_of[pair.second["id"]]))
        figure = ""
        if pair.kind == "synthetic" and job.request.figures:
            figure = f"pairs/{pair.label}/{PurePosixPath(pair.second['file_name']).stem}--{PurePosixPath(pair.first['file_name']).stem}.png"
            images = job.dataset.load_images([pair.first, pair.second])
            real_titles, synthetic_titles = [], []
            for target in job.targets:
                similarity = f"r={pearson(first[target], second[target]):.2f}, IoU={top_region_iou(first[target], second[target]):.2f}"
                real_titles.append(f"real {pair.first['id']}\n{_map_for(target, target_class[(pair.first['id'], target)])}")
                synthetic_titles.append(
                    f"synthetic {pair.second['id']}\n{_map_for(target, target_class[(pair.second['id'], target)])}\n{similarity}"
                )
            png = pair_png(
                images[0], images[1], [first[t] for t in job.targets], [second[t] for t in job.targets],
                real_titles, synthetic_titles,
            )  # fmt: skip
            (tmp / figure).parent.mkdir(parents=True, exist_ok=True)
            (tmp / figure).write_bytes(png)
        for target in job.targets:
            results.append(
                {
                    "kind": pair.kind, "label": pair.label, "target": target, "real_id": pair.first["id"],
                    "other_id": pair.second["id"], "pearson": pearson(first[target], second[target]),
                    "iou_top20": top_region_iou(first[target], second[target], TOP_FRACTION), "figure": figure,
                }
            )  # fmt: skip
    with open(tmp / "pairs.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(PAIR_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "pearson": f"{r['pearson']:.6f}", "iou_top20": f"{r['iou_top20']:.6f}"} for r in results)
    return {"top_fraction": TOP_FRACTION, "classes": summarize_pairs(results, job.targets, job.dataset.classes)}


def _map_for(target: str, target_class: str) -> str:
    return f"map for {target_class}" if target == target_class else f"map for {target} class ({target_class})"
