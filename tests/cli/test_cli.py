"""Command-line conventions: stdout carries only results, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from synthmed.data import Dataset, partial_path
from synthmed.data.sample import total_images


def test_sample_data_prints_only_the_output_path(run, tmp_path):
    result = run("sample-data", "-o", tmp_path / "d", "--size", 16, "--scale", 0.01, "--quiet")
    assert result.code == 0
    assert result.out == f"{tmp_path / 'd'}\n"
    assert Dataset.open(tmp_path / "d").image_size == (16, 16)


def test_json_summary(run, tmp_path):
    result = run("sample-data", "-o", tmp_path / "d", "--size", 16, "--scale", 0.01, "--json", "-q")
    summary = json.loads(result.out)
    assert summary["output"] == str(tmp_path / "d")
    assert summary["images"] == total_images(0.01) and summary["image_size"] == [16, 16]


def test_existing_output_is_exit_2_one_line(run, tmp_path):
    out = tmp_path / "d"
    assert run("sample-data", "-o", out, "--size", 16, "--scale", 0.01, "-q").code == 0
    before = (out / "metadata.csv").read_bytes()
    result = run("sample-data", "-o", out, "--size", 16, "--scale", 0.01, "-q")
    assert result.code == 2
    assert result.err.strip().startswith("synthmed: error: output") and "--overwrite" in result.err
    assert len(result.err.strip().splitlines()) == 1 and result.out == ""
    assert (out / "metadata.csv").read_bytes() == before


def test_overwrite_replaces(run, tmp_path):
    out = tmp_path / "d"
    assert run("sample-data", "-o", out, "--size", 16, "--scale", 0.01, "-q").code == 0
    assert run("sample-data", "-o", out, "--size", 24, "--scale", 0.01, "-q", "--overwrite").code == 0
    assert Dataset.open(out).image_size == (24, 24)
    assert not partial_path(out).exists()


def test_bad_option_value_is_exit_2_one_line(run, tmp_path):
    result = run("sample-data", "-o", tmp_path / "d", "--size", 4)
    assert result.code == 2 and result.err.startswith("synthmed: error: --size 4")
    assert not (tmp_path / "d").exists() and not partial_path(tmp_path / "d").exists()
    result = run("sample-data", "-o", tmp_path / "d", "--size", "big")
    assert result.code == 2 and result.err.startswith("synthmed: error: ") and len(result.err.splitlines()) == 1


def test_unknown_command_and_missing_option(run):
    result = run("frobnicate")
    assert result.code == 2 and result.err.startswith("synthmed: error: No such command")
    result = run("sample-data")
    assert result.code == 2 and "--output" in result.err and len(result.err.splitlines()) == 1


def test_info_table_and_json(run, sample_dataset):
    result = run("info", sample_dataset)
    assert result.code == 0 and "ModerateDemented" in result.out and "train" in result.out
    record = json.loads(run("info", sample_dataset, "--json").out)
    data = Dataset.open(sample_dataset)
    assert record["images"] == len(data.rows)
    total = sum(n for split in record["counts"].values() for label in split.values() for n in label.values())
    assert total == len(data.rows)
    assert record["counts"]["train"]["ModerateDemented"]["real"] == len(
        data.select(split="train", labels=["ModerateDemented"])
    )
    assert record["output"] == str(sample_dataset) and record["grid"] is None
    assert record["subject_grouping"]["images_without_subject"] == len([r for r in data.rows if not r["subject"]])


def test_info_grid_draws_a_row_per_class(run, sample_dataset, tmp_path):
    import numpy as np
    from PIL import Image

    result = run("info", sample_dataset, "--grid", tmp_path / "grid.png", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["grid"] == str(tmp_path / "grid.png")
    image = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    classes = len(Dataset.open(sample_dataset).classes)
    assert image.shape[0] > 60 * classes and image.std() > 10


def test_info_rejects_a_non_dataset(run, tmp_path):
    result = run("info", tmp_path)
    assert result.code == 2 and result.err.startswith("synthmed: error: ") and "not a dataset folder" in result.err


def test_debug_shows_a_traceback(tmp_path):
    command = [sys.executable, "-m", "synthmed", "info", str(tmp_path)]
    plain = subprocess.run(command, capture_output=True, text=True)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "DatasetError" in debug.stderr


def test_console_script_and_module_entry_point(tmp_path):
    import shutil

    exe = shutil.which("synthmed") or str(__import__("pathlib").Path(sys.executable).with_name("synthmed"))
    result = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("synthmed ")


def test_plugins_is_one_row_per_plugin_within_80_columns(run, monkeypatch):
    from synthmed.registry import KINDS, list_entries

    monkeypatch.setenv("COLUMNS", "80")
    out = run("plugins").out
    assert max(len(line) for line in out.splitlines()) <= 80 and "…" not in out
    assert out.count("synthmed (built-in)") == 1 and "default_plugins" not in out
    words = set(out.replace(",", " ").split())
    for kind in KINDS:
        for name in list_entries(kind):
            assert name in words, name


def test_help_gives_the_model_dependent_defaults_it_cannot_import():
    import inspect
    import re
    import typing

    from synthmed.cli.generate import generate
    from synthmed.cli.options import FIT_EPOCHS_HELP
    from synthmed.compress.learned import DEFAULT_EPOCHS
    from synthmed.generate.ddpm import DdpmGenerator
    from synthmed.interpolate.job import DEFAULT_FIT_EPOCHS
    from synthmed.registry import list_entries

    said = dict(re.findall(r"([a-z][a-z ]*?) (\d+)[;).,]", FIT_EPOCHS_HELP.split("own: ", 1)[1]))
    builtin = {name: e for name, e in list_entries("generator").items() if e.plugin.startswith("synthmed.")}
    assert builtin and all(int(said[name]) == e.info.fit_epochs for name, e in builtin.items())
    assert int(said["autoencoders"]) == DEFAULT_FIT_EPOCHS and int(said["learned codecs"]) == DEFAULT_EPOCHS
    defaults = inspect.signature(DdpmGenerator.__init__).parameters
    hints = typing.get_type_hints(generate, include_extras=True)
    help_of = {name: hints[name].__metadata__[0].help for name in ("steps", "guidance")}
    assert all(f"default {defaults[name].default};" in text for name, text in help_of.items()) 


def test_tables_fit_80_columns_without_cutting_class_names():
    from rich.console import Console

    from synthmed.cli.output import table_of

    header = ["class", "real available", "real kept", "synthetic asked", "synthetic added", "final"]
    rows = [["VeryMildDemented", 1781, 1781, 500, 14, 1795], ["ModerateDemented", 49, 49, 0, 0, 49]]
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    console.print(table_of("train split of a-rather-long-output-folder-name", header, rows))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    assert "VeryMildDemented" in text and "ModerateDemented" in text and "1795" in text
