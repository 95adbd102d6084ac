"""Every command block of README.md and docs/*.md keeps working.

Fenced `sh` blocks run as written, in order, in one folder per page holding the inputs the page
names (`data`, `xrays/`, `runs/resnet`...), under the quick convention of `quick.py` (sizes,
epochs and counts capped). Blocks marked `<!-- not run: REASON -->` and unlabelled synopses
are not run, but every `synthmed` command line in every block must name a real command and
real options, so a page that drifts from the command line fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from blocks import PAGES, REPO, blocks, command_lines
from doc_inputs import INPUTS

HERE = Path(__file__).resolve().parent
PAGE_IDS = [str(p.relative_to(REPO)) for p in PAGES]


def _click_commands() -> dict:
    import typer

    from synthmed.cli import make_app

    return typer.main.get_command(make_app()).commands


def _unknown(args: list[str], commands: dict) -> str | None:
    """What in one `synthmed ARGS` line the command line does not know, or None."""
    words = [a for a in args if not a.startswith("-")]
    if not words or args[0].startswith("-"):
        return None if not args or args[0] in ("--help", "--version", "--debug") else f"option {args[0]}"
    name = words[0]
    if name not in commands:
        return f"command {name!r}"
    command = commands[name]
    opts = {o for p in command.params if getattr(p, "param_type_name", "") == "option"
            for o in (*p.opts, *p.secondary_opts)}
    opts |= {"--help"}
    for arg in args[1:]:
        option = arg.split("=", 1)[0]
        if option.startswith("-") and option != "-" and option != "..." and option not in opts:
            return f"{name} {option}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_command_line_names_real_commands_and_options(page):
    commands = _click_commands()
    problems = []
    for block in blocks(page):
        for args in command_lines(block.text):
            problem = _unknown(args, commands)
            if problem:
                problems.append(f"{block.name}: unknown {problem} in `synthmed {' '.join(args)}`")
    assert problems == []


def test_the_quick_convention_caps_sizes_and_fits():
    from quick import quick

    assert quick(["train", "mix", "-o", "run", "--repeats", "20", "--epochs=5"]) == [
        "train", "mix", "-o", "run", "--repeats", "2", "--epochs", "1"]
    assert quick(["sample-data", "-o", "data", "--scale", "0.2"]) == [
        "sample-data", "-o", "data", "--scale", "0.03", "--size", "16"]
    assert quick(["interpolate", "d", "-o", "i", "--device", "cuda:1"])[-4:] == ["--device", "cpu", "--fit-epochs", "1"]
    assert "--fit-epochs" not in quick(["compress", "d", "-o", "c", "--codec", "jpeg=50"])
    assert "--fit-epochs" not in quick(["generate", "d", "-o", "g", "--model", "fitted", "--per-class", "500"])


def _shell_env(work: Path) -> dict[str, str]:
    """PATH with the quick `synthmed` and this interpreter's `python` first; HOME inside `work`."""
    bin_dir = work / ".bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "synthmed"
    wrapper.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(HERE)!r})\n"
                       "from quick import main\nif __name__ == '__main__':\n    main()\n")  # workers re-import it
    wrapper.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("SYNTHMED_PLUGINS", None)  # the first-party plugins load, as for a reader
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HOME=str(work / ".home"),
               SYNTHMED_PROGRESS="lines", MPLBACKEND="Agg")
    (work / ".home").mkdir()
    return env


@pytest.mark.slow  # each command starts Python and torch: seconds each, minutes a page on a loaded machine
@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_the_command_blocks_of_each_page_run(page, tmp_path):
    runnable = [block for block in blocks(page) if block.runs]
    if not runnable:
        pytest.skip(f"{page.name}: no runnable block (synopses and not-run blocks are checked above)")
    work = tmp_path / "work"
    work.mkdir()
    env = _shell_env(work)
    with INPUTS.get(page.name, lambda *_: contextlib.nullcontext())(work, env):
        for block in runnable:
            script = f"set -euo pipefail\n{block.text}"
            result = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                                    timeout=1500)
            assert result.returncode == 0, f"{block.name} failed:\n{block.text}\n--- stderr:\n{result.stderr[-4000:]}"


def test_not_run_blocks_say_why():
    for page in PAGES:
        for block in blocks(page):
            if block.lang == "sh" and not block.runs:
                assert len(block.not_run) > 10, block.name
    assert shutil.which("bash")


def test_a_line_that_drifted_from_the_command_line_is_caught():
    commands = _click_commands()
    text = "synthmed train data -o run --epochs 2 \\\n    --repeat 3   # old option\nsynthmed frobnicate x"
    assert [_unknown(args, commands) for args in command_lines(text)] == ["train --repeat", "command 'frobnicate'"]
    assert _unknown(command_lines("run=$(synthmed train \"$mix\" -o run --repeats 2)")[0], commands) is None
