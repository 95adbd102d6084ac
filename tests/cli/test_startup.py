"""Start-up: `--help`, `--version`, a command's help and the completion scripts load nothing
heavy, and the help that lists commands not yet made matches the help of the made commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# numpy, Pillow, torch, and the modules behind the built-in plugins' hooks.
HEAVY = ("numpy", "PIL", "torch", "kornia", "diffusers", "openai", "pydicom", "nibabel", "rich.markdown",
         "synthmed.preprocess.formats", "synthmed.train", "synthmed.generate", "synthmed.augment",
         "synthmed.interpolate", "synthmed.compress", "synthmed.data", "synthmed.registry")


def loaded_after(*args: str) -> list[str]:
    """Modules in sys.modules after `synthmed ARGS`, in a fresh interpreter with the installed plugins."""
    code = (
        "import json, sys\nfrom synthmed.cli import main\n"
        f"main({list(args)!r})\n"
        "sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SYNTHMED_PLUGINS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stderr.splitlines()[-1])


def heavy_in(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_help_imports_no_numpy_pil_torch_or_plugin_internals():
    modules = loaded_after("--help")
    assert heavy_in(modules) == []
    # The listing reads the commands' docstrings without importing them (nor Rich, which they load).
    assert not [m for m in modules if m.startswith(("synthmed.cli.train", "rich"))]
    assert "synthmed.default_plugins.readers" in modules  # plugin commands were looked for


@pytest.mark.parametrize("command", ["train", "generate", "preprocess"])
def test_a_commands_help_imports_only_that_command(command):
    modules = loaded_after(command, "--help")
    assert heavy_in(modules) == []
    made = [m for m in modules if m.startswith("synthmed.cli.") and m not in ("synthmed.cli.app", "synthmed.cli.options",
                                                                               "synthmed.cli.output")]
    assert made == [f"synthmed.cli.{command}"]


def test_making_the_completion_scripts_imports_nothing_heavy():
    """Tab completion runs no Python (static scripts); generating them makes every command."""
    code = ("import json, sys\nfrom synthmed.cli.completion import render_all\nrender_all()\n"
            "print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout.splitlines()[-1])
    assert "synthmed.cli.train" in modules and heavy_in(modules) == []


def test_version_loads_neither_typer_nor_plugins():
    modules = loaded_after("--version")
    assert heavy_in(modules) == []
    assert not [m for m in modules if m.split(".")[0] in ("typer", "rich", "pluggy") or m == "synthmed.plugins"]


def test_listing_from_docstrings_matches_the_made_commands(run):
    """`synthmed --help` takes each command's summary from its docstring without making the
    command; it must read exactly as when every command is made."""
    import typer

    from synthmed.cli import make_app

    lazy = run("--help").out
    group = typer.main.get_command(make_app())
    for name in list(group.commands):  # make every command
        assert group.commands[name].name == name
    with group.make_context("synthmed", ["--help"], resilient_parsing=True) as ctx:
        made = group.get_help(ctx)
    assert "Commands:" in lazy and "train" in lazy
    assert lazy.strip() == made.strip()
