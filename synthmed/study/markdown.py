"""report.md from summary.json: the table a paper would print, with the verdicts, the exact
command and the versions."""

from __future__ import annotations

from typing import Any

TABLE_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "ece")


def _stat(stat: dict[str, Any] | None, digits: int = 3) -> str:
    if not stat or stat.get("median") is None:
        return "n/a"
    if stat["n"] == 1:
        return f"{stat['median']:.{digits}f}"
    return f"{stat['median']:.{digits}f} [{stat['q1']:.{digits}f}, {stat['q3']:.{digits}f}]"


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"


def _difference(c: dict[str, Any]) -> str:
    if c["median_difference"] is None:
        return "n/a"
    text = f"{c['median_difference']:+.4f}"
    if c["ci95"]:
        text += f" [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]"
    return text


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def render_report(summary: dict[str, Any]) -> str:
    primary = summary["primary"]
    better = "lower" if any(c["better"] == "lower" for c in summary["comparisons"] if c["metric"] == primary) \
        else "higher"
    cells = {c["id"]: c for c in summary["cells"]}
    names = summary["control_names"]
    v = summary["versions"]
    lines = [f"# Study: {summary['study']}", "",
             f"Command: `{summary['command'] or 'synthmed study ' + summary['file']}`  ",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + "  ",
             f"Dataset: `{summary['dataset']['path']}` (digest {summary['dataset']['digest'][:12]}); real train images "
             "per class: " + ", ".join(f"{k} {n}" for k, n in summary["dataset"]["train_counts"].items()) + "  ",
             f"Every cell is scored on the **{summary['split']}** split. Primary metric: **{primary}** ({better} is "
             f"better), the median over **{summary['repeats']}** paired repeats (repeat r of every cell shares its "
             f"seed, so it keeps the same real images). Paired differences are scenario minus control; p-values are "
             f"two-sided Wilcoxon signed-rank, Holm-corrected across the scenarios of the study; verdicts at "
             f"alpha = {summary['alpha']}.", ""]
    for text in summary["warnings"]:
        lines += [f"> **Warning:** {text}", ""]
    for text in summary["notes"]:
        lines += [f"> **Note:** {text}", ""]
    lines += _quality(summary)
    if summary["verdicts"]:
        lines += ["## Verdicts", ""]
        kinds = [k for k in names if any(k in entry["by_control"] for entry in summary["verdicts"].values())]
        rows = []
        for cell_id, entry in summary["verdicts"].items():
            cell = cells[cell_id]
            rows.append([entry["label"], cell["classifier"], cell["augment"], f"**{entry['overall']}**",
                         *(entry["by_control"].get(k, "") for k in kinds), "; ".join(entry["flags"])])
        lines += _table(["scenario", "classifier", "augment", "verdict", *(f"vs {names[k]}" for k in kinds), "flags"], rows)
        lines += ["'helps' needs a significant gain against every control (same real images, duplicates, same "
                  "steps); 'hurts', a significant loss against the same real images.", ""]
    lines += _cell_tables(summary, cells, primary)
    lines += _selective(summary)
    if summary.get("figures"):
        lines += ["## Figures", ""] + [f"![{path}]({path})" for path in summary["figures"]] + [""]
    cited = {p["source"] for cell in summary["cells"] for p in cell["published"]}
    for i, entry in enumerate(summary["published"], start=1):
        if i not in cited:
            continue
        lines.append(f"<sup>{i}</sup> Published ({entry['metric']}): {entry['label']}. The paper's numbers, on its own "
                     "dataset, beside this study's: not comparable one-to-one.  ")
    return "\n".join(lines).rstrip() + "\n"


def _cell_tables(summary: dict[str, Any], cells: dict[str, Any], primary: str) -> list[str]:
    lines = []
    metrics = [m for m in TABLE_METRICS if m != primary]
    per_class = [m for m in next(iter(cells.values()))["metrics"] if "[" in m]
    groups: dict[tuple[str, str], list[dict]] = {}
    for cell in cells.values():
        groups.setdefault((cell["classifier"], cell["augment"]), []).append(cell)
    names = summary["control_names"]
    for (classifier, augment), members in groups.items():
        lines += [f"## {classifier}, augment {augment}", ""]
        header = ["cell", "role", f"{primary} median [q1, q3]", *metrics, *per_class, "steps"]
        has_published = any(c["published"] for c in members)
        if has_published:
            header.append("published (the paper's, on its dataset)")
        rows = []
        for cell in members:
            row = [cell["label"], names.get(cell["role"], cell["role"]), _stat(cell["metrics"][primary]),
                   *(_stat(cell["metrics"].get(m)) for m in metrics), *(_stat(cell["metrics"].get(m)) for m in per_class),
                   _stat(cell["training"]["steps"], 0)]
            if has_published:
                row.append("; ".join(f"{p['metric']} {p['value']:g}<sup>{p['source']}</sup>" for p in cell["published"]))
            rows.append(row)
        lines += _table(header, rows)
        comparisons = [c for c in summary["comparisons"] if c["metric"] == primary and cells[c["scenario"]] in members]
        if comparisons:
            lines += [f"Paired differences in {primary} (scenario minus control):", ""]
            lines += _table(["scenario", "control", "median difference [95 % CI]", "p", "p (Holm)", "verdict"], [
                [cells[c["scenario"]]["label"], names[c["kind"]], _difference(c), _number(c["p"]), _number(c["p_holm"]),
                 c["verdict"]] for c in comparisons])
    return lines


def _selective(summary: dict[str, Any]) -> list[str]:
    sel = summary.get("selective")
    if not sel:
        return []
    lines = ["## Selective augmentation", "",
             f"Each candidate class was given synthetic images alone; a class is kept when its median paired "
             f"difference in {sel['metric']} on the **val** split favours it (the test split is never seen by the "
             "choice).", ""]
    rows = [[label, _difference(e), _number(e["p"]), "kept" if label in (sel["chosen"] or []) else "left out"]
            for label, e in sel["evidence"].items()]
    lines += _table(["class", "val median difference [95 % CI]", "p", "choice"], rows)
    chosen = ", ".join(sel["chosen"] or []) or "none (no class improved on val; nothing to report on test)"
    lines += [f"Chosen: {chosen}.", ""]
    return lines


def _quality(summary: dict[str, Any]) -> list[str]:
    """The synthetic sources' quality verdicts, before any classifier result."""
    rows = [[name, label, f"{q['synthetic']}/{q['real']}", _number(q["fid"], 1), _number(q["precision"], 2),
             _number(q["recall"], 2), _number(q["coverage"], 2), f"**{q['verdict']}**"]
            for name, classes in summary.get("source_quality", {}).items() for label, q in classes.items()]
    if not rows:
        return []
    return (["## Synthetic image quality", ""]
            + _table(["source", "class", "n syn/real", "FID", "precision", "recall", "coverage", "verdict"], rows)
            + ["Measured in a feature space fitted on the real train split (see the source's quality.json); "
               "a verdict other than ok means the images are collapsed, copies, off-distribution or too few to measure.", ""])
