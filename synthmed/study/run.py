"""`synthmed study` as a Python call: read and check the study, then run its cells (or merge
what shards ran) and write the report. Nothing is written before every check has passed."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from synthmed.errors import SynthmedError, UsageError
from synthmed.progress import Progress, no_progress, start_task
from synthmed.seeding import derive_seed
from synthmed.study.cells import Cache, Job, clear_stale_scratch, job_key
from synthmed.study.grid import Grid, build_grid, pool_counts, resolve_selective
from synthmed.study.schema import Study, load_study
from synthmed.study.validate import at, check_study, settings_for

MARKER = "study.json"
Message = Callable[[str, str], None]  # (level: "warning" or "note", text)
NO_LIMIT = 10**9  # epochs and patience of a steps-matched control: only the step budget ends it


def repeat_seed(seed: int, repeat: int) -> int:
    """Repeat r's seed, the same in every cell: scenario and controls are paired by it."""
    return derive_seed(seed, "study-repeat", repeat)


@dataclass
class Context:
    study: Study
    out: Path
    real_path: Path
    real_digest: str
    real_counts: dict[str, int]
    warnings: list[str]
    grid: Grid
    available: dict[str, dict[str, int]]
    device: str
    source_paths: dict[str, Path] = field(default_factory=dict)
    source_digests: dict[str, str] = field(default_factory=dict)
    weights_digests: dict[str, str] = field(default_factory=dict)

    def source_counts(self, name: str) -> dict[str, int]:
        """The images per class that made source `name` must hold: what the cells draw from it,
        times its pool factor (empty for a source no cell draws from)."""
        from synthmed.study.sources import pool_counts_per_class

        pools = pool_counts(self.study, self.grid, self.real_counts)
        return pool_counts_per_class(pools.get(name, {}), self.study.sources[name].pool)

    def job(self, cell_id: str, repeat: int, cache: Cache) -> Job | None:
        """The job of one repeat, or None while what it depends on is not finished."""
        from synthmed import __version__

        cell = self.grid.cells[cell_id]
        if cell.mix.source is not None and cell.mix.source not in self.source_paths:
            return None  # a source not made yet (a dry run)
        settings = settings_for(self.study, cell.classifier, cell.augment)
        if cell.steps_of is not None:
            target = self.job(cell.steps_of, repeat, cache)
            record = cache.get(target) if target is not None else None
            if record is None:
                return None
            settings |= {"max_steps": int(record["train"]["steps"]), "epochs": NO_LIMIT, "patience": NO_LIMIT}
        source = cell.mix.source
        weights = settings.get("weights")
        if weights and weights not in self.weights_digests:
            from synthmed.data.imageio import sha256_file

            self.weights_digests[weights] = sha256_file(Path(weights))
        seed = repeat_seed(self.study.seed, repeat)
        key = job_key(version=__version__, dataset=self.real_digest, source=self.source_digests.get(source) if source else None,
                      cell=cell, settings=settings, seed=seed, weights=self.weights_digests.get(weights))
        return Job(cell, repeat, seed, key, str(self.real_path), str(self.source_paths[source]) if source else None,
                   settings, tuple(sorted(self.grid.splits[cell_id])), self.device)


def prepare(file: Path, out: Path, *, quick: bool, device: str | None, staging: Path) -> Context:
    """Every check that needs no output: the study file, its dataset, sources and cells."""
    from synthmed.data import Dataset, refuse_output_over_inputs
    from synthmed.generate.plan import real_train_counts
    from synthmed.mix.plan import plan_mix
    from synthmed.study.sources import dataset_digest, folder_pool, sample_key, write_sample

    study = load_study(file, quick=quick)
    inputs = [study.dataset, study.file, *(s.target for s in study.sources.values() if s.kind == "path")]
    refuse_output_over_inputs(out, inputs)
    if study.sample is not None:
        real_path = out / "data" / sample_key(study.sample)
        if not (real_path / "dataset.json").is_file():
            real_path = write_sample(study.sample, staging / sample_key(study.sample))
    else:
        real_path = study.dataset
        if not (real_path / "dataset.json").is_file():
            raise study.fail(("dataset",), f"{real_path}: not a dataset folder (no dataset.json)")
    with at(study, ("dataset",)):
        real = Dataset.open(real_path)
    warnings = check_study(study, real)
    real_counts = real_train_counts(real)
    available = {name: folder_pool(Path(s.target)) for name, s in study.sources.items() if s.kind == "path"}
    grid = build_grid(study, real_counts, available)
    context = Context(study, out, real_path, dataset_digest(real_path), real_counts, warnings, grid, available,
                      device or study.device)
    for name, spec in study.sources.items():
        if spec.kind == "path":
            context.source_paths[name] = Path(spec.target)
            context.source_digests[name] = dataset_digest(Path(spec.target))
    _check_made_sources(context, real)
    # Plan every mix that can be planned now, so a cell that cannot be mixed fails before any runs.
    planned = set()
    for cell in grid.cells.values():
        if cell.mix in planned or (cell.mix.source and cell.mix.source not in available):
            continue
        planned.add(cell.mix)
        synthetic = [Dataset.open(context.source_paths[cell.mix.source])] if cell.mix.source else []
        try:
            plan_mix(real, synthetic, real_spec=cell.mix.real, synthetic_spec=cell.mix.synthetic,
                     synthetic_classes=list(cell.mix.synthetic_classes) if cell.mix.synthetic_classes else None,
                     balance=cell.mix.balance, oversample_spec=cell.mix.oversample, seed=study.seed)
        except UsageError as exc:
            raise UsageError(f"{study.file}: cell {cell.label()!r}: {exc}") from None
    return context


def _check_made_sources(context: Context, real: Any) -> None:
    """What making a source would refuse, refused now (before OUT exists): too few images of a
    class to fit on, an interpolation that plans nothing."""
    pools = pool_counts(context.study, context.grid, context.real_counts)
    for name, spec in context.study.sources.items():
        if spec.kind == "path" or name not in pools:
            continue
        counts = context.source_counts(name)
        with at(context.study, ("sources", name, spec.kind)):
            if not counts:
                raise UsageError("the cells ask it for no images (their amounts round to 0 for every class); "
                                 "raise axes.synthetic")
            if spec.kind == "generator":
                from synthmed.generate.plan import generator_entry
                from synthmed.generate.sampling import fit_rows

                fit_rows(real, list(counts), generator_entry(spec.target).info.min_images)
            elif spec.kind == "interpolate":
                from synthmed.interpolate.job import InterpolationSettings, prepare as plan_interpolation

                plan_interpolation(InterpolationSettings(
                    dataset=context.real_path, out=context.out / "unused", autoencoder=spec.target,
                    autoencoder_args=spec.args, per_class=max(counts.values()), classes=list(counts),
                    device=context.device))


def identity(context: Context) -> dict[str, Any]:
    return {"name": context.study.name, "dataset": context.real_digest}


def check_out(out: Path, context: Context, *, overwrite: bool, report_only: bool) -> None:
    """An existing OUT must hold this study (or be replaced with --overwrite)."""
    if not out.exists():
        if report_only:
            raise UsageError(f"-o {out}: no study output to report on; run the study (or its shards) first")
        if not out.parent.is_dir():
            raise UsageError(f"-o {out}: parent folder {out.parent} does not exist")
        return
    marker = out / MARKER
    if not out.is_dir() or (not marker.is_file() and any(out.iterdir())):
        raise UsageError(f"-o {out}: exists and is not a study output; choose another folder")
    if not marker.is_file():
        return
    try:
        held = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        held = {}
    mine = identity(context)
    if {k: held.get(k) for k in mine} != mine and not (overwrite and not report_only):
        raise UsageError(f"-o {out} holds another study ({held.get('name')!r} on dataset "
                         f"{str(held.get('dataset'))[:12]}); pass --overwrite to replace it, or choose another folder")


def open_out(context: Context, *, overwrite: bool, staging: Path) -> None:
    out = context.out
    if overwrite and out.exists():
        if context.real_path.is_relative_to(out):  # sample data made earlier: kept, the rest goes
            context.real_path = Path(shutil.move(str(context.real_path), str(staging / context.real_path.name)))
        shutil.rmtree(out)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    scratch = out / MARKER
    tmp = scratch.with_name(f".{MARKER}.{os.getpid()}")
    tmp.write_text(json.dumps(identity(context), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, scratch)
    if context.real_path.is_relative_to(staging):  # the sample data, kept with the study from now on
        target = out / "data" / context.real_path.name
        target.parent.mkdir(exist_ok=True)
        if not target.exists():
            try:
                shutil.move(str(context.real_path), str(target))
            except OSError:
                if not (target / "dataset.json").is_file():
                    raise
        context.real_path = target


def make_sources(context: Context, names: set[str], *, notify: Message, must_exist: bool,
                 progress: Progress = no_progress) -> None:
    """Made sources the given cells need: reuse OUT/sources/<name>-<digest>, or make them."""
    from synthmed.study.sources import dataset_digest, make_source, source_folder

    for name in sorted(names):
        spec = context.study.sources[name]
        if spec.kind == "path":
            continue
        counts = context.source_counts(name)
        folder = source_folder(context.out / "sources", spec, context.real_digest, counts, context.study.seed)
        if not (folder / "dataset.json").is_file():
            if must_exist:
                continue  # not made yet: its cells count as missing
            folder.parent.mkdir(exist_ok=True)
            make_source(spec, context.real_path, folder, counts, seed=context.study.seed, device=context.device,
                        notify=lambda text: notify("note", text), progress=progress)
        context.source_paths[name] = folder
        context.source_digests[name] = dataset_digest(folder)


def run_study(file: str | Path, out: str | Path, *, quick: bool = False, overwrite: bool = False,
              dry_run: bool = False, report_only: bool = False, shard: str | None = None,
              executor: str = "inprocess", address: str | None = None, gpus_per_cell: float | None = None,
              device: str | None = None, command: str = "", progress: Progress = no_progress,
              message: Message = lambda level, text: None) -> dict[str, Any]:
    """Run (or merge, or plan) a study into OUT; returns the summary. Work is reported to
    `progress` (a "study" task advanced per finished repeat, and each run's own tasks);
    warnings and notes as `message("warning" | "note", text)`."""
    from synthmed.devices import parse_shard
    from synthmed.study.executors import make_executor

    out = Path(out)
    part = parse_shard(shard)
    if report_only and (shard is not None or dry_run):
        raise UsageError("--report-only merges what every shard ran; it takes neither --shard nor --dry-run")
    if executor != "ray" and (address is not None or gpus_per_cell is not None):
        raise UsageError("--address and --gpus-per-cell are for --executor ray")

    with tempfile.TemporaryDirectory(prefix="synthmed-study-") as staging_dir:
        staging = Path(staging_dir)
        context = prepare(Path(file), out, quick=quick, device=device, staging=staging)
        check_out(out, context, overwrite=overwrite, report_only=report_only)
        for warning in context.warnings:
            message("warning", warning)
        if dry_run:
            from synthmed.study.dryrun import dry_run_summary

            return dry_run_summary(context, staging, part, message=message)
        pool = None
        if not report_only:
            pool = make_executor(executor, address=address, gpus=gpus_per_cell, scratch=None, progress=progress)
        try:
            open_out(context, overwrite=overwrite and not report_only, staging=staging)
            cache = Cache(out / "cache", notify=lambda text: message("note", text))
            units = context.grid.units()
            mine = {cell_id for unit in units[part[0]::part[1]] for cell_id in unit}
            sel = context.grid.selective
            owns_selective = sel is not None and sel["control"] in mine
            every = {c.mix.source for c in context.grid.cells.values() if c.mix.source} | ({sel["base"].source} if sel else set())
            needed = {c.mix.source for i, c in context.grid.cells.items() if i in mine and c.mix.source}
            if owns_selective:
                needed.add(sel["base"].source)
            make_sources(context, every if report_only else needed, notify=message, must_exist=report_only,
                         progress=progress)
            stats = {"computed": 0, "cached": 0}
            if pool is not None:
                scratch = out / ".work" / f"work-{os.getpid()}"
                clear_stale_scratch(out / ".work")
                scratch.mkdir(parents=True, exist_ok=True)
                if hasattr(pool, "scratch"):
                    pool.scratch = scratch
                try:
                    stats = schedule(context, cache, pool, mine, owns_selective, progress=progress)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
        finally:
            if pool is not None:
                pool.close()
        if part[1] > 1:
            return {"shard": f"{part[0] + 1}/{part[1]}", **stats, "report": None}
        from synthmed.study.report import collect, write_outputs

        records = collect(context, cache)
        summary = write_outputs(context, records, command=command)
        return {**summary, **stats}


def schedule(context: Context, cache: Cache, pool: Any, mine: set[str], owns_selective: bool,
             *, progress: Progress = no_progress) -> dict[str, int]:
    """Run every missing repeat of this shard's cells, each as soon as what it needs is done.
    One "study" task counts the repeats (its rate gives the ETA over the whole study); each
    advance names the cell and repeat just finished, or (n=0) the one starting."""
    repeats = context.study.repeats
    todo = [(cell_id, r) for cell_id in context.grid.cells if cell_id in mine for r in range(1, repeats + 1)]
    cached = 0
    for cell_id, r in todo:  # in order, so a steps-matched control sees its scenario's record
        job = context.job(cell_id, r, cache)
        cached += job is not None and cache.get(job) is not None
    task = start_task(progress, f"study {context.study.name}", total=len(todo), unit="repeat", done=cached)
    counted = set()  # repeats already counted as cached

    def where(job: Job) -> dict[str, str]:
        return {"cell": f"{job.cell.label()} | {job.cell.augment} | {job.cell.classifier}",
                "repeat": f"{job.repeat}/{repeats}"}

    pool.on_start = lambda job: task(0, now=where(job)["cell"], repeat=where(job)["repeat"])
    computed = 0
    while True:
        waiting = []
        for cell_id, repeat in todo:
            job = context.job(cell_id, repeat, cache)
            if job is None:
                waiting.append((cell_id, repeat))
            elif cache.get(job) is not None:
                counted.add(job.key)
            else:
                pool.submit(job)
        todo = waiting
        if pool.busy() == 0:
            if owns_selective and context.grid.selective.get("chosen") is None:
                new = resolve_from_cache(context, cache)
                todo += [(cell_id, r) for cell_id in new for r in range(1, repeats + 1)]
                if todo:  # the chosen classes' scenario and its controls: a task of their own
                    task.finish()
                    task = start_task(progress, f"study {context.study.name}: selective", total=len(todo),
                                      unit="repeat")
                    continue
            if todo:
                raise SynthmedError(f"{len(todo)} repeats wait for cells no shard runs")
            break
        job, record = pool.next_done()
        cache.put(record)
        computed += 1
        task(1, **where(job))
    task.finish()
    return {"computed": computed, "cached": len(counted)}


def selective_choice(context: Context, cache: Cache) -> tuple[list[str], dict[str, Any]] | None:
    """Classes whose probe beats the real-only control on val (median paired difference of the
    primary metric), or None while a probe or control repeat is missing."""
    from synthmed.study.stats import gain, paired

    sel, metric = context.grid.selective, context.study.primary

    def values(cell_id: str) -> list[float | None] | None:
        found = []
        for r in range(1, context.study.repeats + 1):
            job = context.job(cell_id, r, cache)
            record = cache.get(job) if job is not None else None
            if record is None:
                return None
            found.append(record["metrics"]["val"].get(metric))
        return found

    control = values(sel["control"])
    if control is None:
        return None
    chosen, evidence = [], {}
    for label, probe_id in sel["probes"].items():
        probe = values(probe_id)
        if probe is None:
            return None
        evidence[label] = paired(probe, control, metric=metric, seed=context.study.seed)
        if gain(evidence[label]):
            chosen.append(label)
    return chosen, evidence


def resolve_from_cache(context: Context, cache: Cache) -> list[str]:
    """Resolve selective augmentation once its probes are done; returns the new cells."""
    choice = selective_choice(context, cache)
    if choice is None:
        return []
    chosen, evidence = choice
    before = set(context.grid.cells)
    resolve_selective(context.grid, context.study, chosen, context.real_counts, context.available)
    context.grid.selective["evidence"] = evidence
    return [cell_id for cell_id in context.grid.cells if cell_id not in before]
