"""What `--resume` checks before it continues anything: the options that determine an output
and the digests of its inputs.

A resumable output records them in `options.json` when it is started (inside `.OUT.partial/`;
the finished output keeps the file). `--resume` compares the recorded run with the one asked
for and refuses, naming the first option (or input) that differs, so an interrupted run is
never finished with other settings or other data.

    {"format_version": 1, "command": "augment",
     "options": {"--policy": "hflip@0.1.0", "--seed": 7, ...},
     "inputs": [{"path": "/abs/D", "digest": "..."}]}
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from synthmed.errors import UsageError

RECORD = "options.json"
RECORD_VERSION = 1
# What writes the dataset PNGs (synthmed.data.imageio.encode_png). Outputs started before it was
# recorded were written by Pillow: a resume would mix two writers' bytes (same pixels, other
# digests, so duplicates between old and new files would go unseen), and is refused.
PNG_WRITER = "libspng-6"
# The files that say what a folder holds: dataset.json and metadata.csv (whose rows carry each
# image's sha256), config.json (which carries the sha256 of its weights), streams.json, ...
_DESCRIBING = (".json", ".csv")


@dataclass(frozen=True)
class RunOptions:
    """The command and the options that determine its output, by their command-line names
    (`--seed`, `--policy`, ...). Values are JSON values; options that only change how fast the
    work goes (`--device`, `--workers`, `--concurrency`) are left out."""

    command: str
    options: Mapping[str, Any] = field(default_factory=dict)


def resolved(path: str | os.PathLike[str] | None) -> str | None:
    """A path option's value as recorded: resolved, so `../D` and `/abs/D` are the same input."""
    return None if path is None else str(Path(path).resolve())


def input_digest(path: str | os.PathLike[str]) -> str:
    """A digest of what a command reads from `path`: a file's bytes; for a folder, the bytes of
    the JSON and CSV files that describe it, by relative path (images and weights are covered by
    the digests those files record)."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        _add_file(digest, path)
        return digest.hexdigest()
    if not path.is_dir():
        return "missing"
    for item in sorted(path.rglob("*")):
        relative = item.relative_to(path)
        if item.suffix in _DESCRIBING and item.is_file() and not any(p.startswith(".") for p in relative.parts):
            digest.update(relative.as_posix().encode("utf-8", "surrogateescape") + b"\0")
            _add_file(digest, item)
    if (path / "config.json").is_file():
        weights = path / "model.safetensors"
        config = _json_or_none(path / "config.json") or {}
        if weights.is_file() and not config.get("sha256"):  # a model folder from before digests
            _add_file(digest, weights)
    return digest.hexdigest()


def _add_file(digest: Any, path: Path) -> None:
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def _json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def make_record(run: RunOptions, inputs: Sequence[str | os.PathLike[str] | None]) -> dict[str, Any]:
    return {
        "format_version": RECORD_VERSION,
        "command": run.command,
        "png_writer": PNG_WRITER,
        # JSON round trip: tuples and lists, ints and floats compare as they will when read back
        "options": json.loads(json.dumps(dict(run.options))),
        "inputs": [None if p is None else {"path": str(Path(p).resolve()), "digest": input_digest(p)} for p in inputs],
    }


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """options.json (write_json renames it into place: a folder killed while its record was
    written holds at most the scratch file, which `never_started` recognises)."""
    from synthmed.jsonio import write_json

    write_json(Path(folder) / RECORD, record)


def never_started(folder: Path) -> bool:
    """An unfinished folder killed before its options were recorded: nothing in it to continue."""
    return all(item.name == f"{RECORD}.tmp" for item in Path(folder).iterdir())


def shown(value: Any) -> str:
    """An option value as a user would type it."""
    if value is None:
        return "(not given)"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(shown(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return ",".join(f"{k}={shown(v)}" for k, v in value.items()) or "(none)"
    return str(value)


def first_difference(before: dict[str, Any], now: dict[str, Any], ignore: Sequence[str] = ()) -> str | None:
    """'NAME OLD ... NAME NEW' for the first option (in `now`'s order) whose value differs, or None."""
    for name in [*now, *(k for k in before if k not in now)]:
        if name not in ignore and before.get(name) != now.get(name):
            return name
    return None


def read_record(folder: Path) -> dict[str, Any] | None:
    return _json_or_none(Path(folder) / RECORD)


def check_record(folder: Path, wanted: dict[str, Any], *, out: Path) -> None:
    """Refuse (UsageError) to continue `folder` (an unfinished `.OUT.partial/` or a finished OUT)
    when it was started with another command, other options or other inputs than `wanted`."""
    saved = read_record(folder)
    again = "rerun with the same options, or without --resume to start over"
    made = "made" if Path(folder) == Path(out) else "started"
    if saved is None:
        raise UsageError(f"--resume: {folder} does not record the options it was {made} with; {again}")
    if saved.get("command") != wanted["command"]:
        raise UsageError(f"--resume: {folder} was made by `synthmed {saved.get('command')}`, "
                         f"not `synthmed {wanted['command']}`; {again}")
    # A finished output is kept as it is, so only an unfinished one must match the writer.
    if made == "started" and saved.get("png_writer", "pillow-6") != wanted.get("png_writer", PNG_WRITER):
        raise UsageError(f"--resume: {folder} was started by a version of synthmed that wrote its images with "
                         f"another PNG writer ({saved.get('png_writer', 'pillow-6')}); run without --resume to start over")
    before, now = saved.get("options") or {}, wanted["options"]
    name = first_difference(before, now)
    if name is not None:
        raise UsageError(f"--resume: {folder} was {made} with {name} {shown(before.get(name))}, "
                         f"this run has {name} {shown(now.get(name))}; {again}")
    changed = changed_input(saved, wanted)
    if changed is not None:
        raise UsageError(f"--resume: input {changed} has changed since {out} was started "
                         f"(its dataset, model or file digest differs); {again}")


def changed_input(saved: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """The path of the first input whose digest differs between two records (or a count), or None."""
    old_inputs, new_inputs = saved.get("inputs") or [], wanted.get("inputs") or []
    for old, new in zip(old_inputs, new_inputs):
        if (old or {}).get("digest") != (new or {}).get("digest"):
            return (new or old or {}).get("path", "an input")
    if len(old_inputs) != len(new_inputs):
        return f"list ({len(old_inputs)} input(s) then, {len(new_inputs)} now)"
    return None


def check_same_run(folders: Sequence[Path], *, ignore: Sequence[str] = ("--shard",)) -> None:
    """Outputs taken together (the shards of one `train --shard` run) must record the same
    command, options (except `ignore`) and inputs; a one-line UsageError names the first difference."""
    records = [(Path(f), read_record(f)) for f in folders]
    for folder, record in records:
        if record is None:
            raise UsageError(f"{folder}: records no options; only the shards of one run can be taken together")
    (first, base), *rest = records
    for folder, record in rest:
        name = first_difference(base["options"], record["options"], ignore)
        if name is not None or record.get("command") != base.get("command"):
            name = name or "command"
            raise UsageError(f"{folder} was made with {name} {shown(record['options'].get(name))} but {first} with "
                             f"{name} {shown(base['options'].get(name))}: not shards of one run")
        changed = changed_input(base, record)
        if changed is not None:
            raise UsageError(f"{folder} and {first} were made from different inputs ({changed}): not shards of one run")
