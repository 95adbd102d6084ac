"""Option names mean one thing: shared options are defined once, `--model` is a fitted model
folder, `--split` one split and `--splits` several; every old spelling is listed in
docs/decisions.md and used nowhere in the docs."""

from __future__ import annotations

import re
import shlex
from collections import defaultdict

import pytest

from conftest import REPO

# Options spelt in two command modules on purpose: preprocess resizes to N or HxW,
# sample-data draws N x N phantoms (an int); --patience is early stopping's patience in both
# train (val checked every epoch, default 2) and generate (checks of --select-by, unset without it).
OWN_SPELLING = {"--size", "--patience"}


def _commands() -> dict:
    import typer

    from synthmed.cli import make_app

    return typer.main.get_command(make_app(with_plugins=False)).commands


def _options(command, *, hidden: bool = False) -> dict:
    return {name: param for param in command.params if getattr(param, "param_type_name", "") == "option"
            and bool(getattr(param, "hidden", False)) == hidden for name in param.opts if name.startswith("--")}


def _type(param) -> str:
    """The option's value type (typer keeps the annotation, click a ParamType)."""
    descriptor = getattr(param, "type_descriptor", None)
    return str(descriptor.annotation if descriptor is not None else param.type.name)


def test_an_option_of_several_command_modules_is_spelt_once_in_cli_options():
    spelt = defaultdict(set)
    for module in (REPO / "synthmed" / "cli").glob("*.py"):
        if module.name == "options.py":
            continue
        for call in re.finditer(r'typer\.Option\(\s*((?:"[^"]*",\s*)*"[^"]*")', module.read_text(encoding="utf-8")):
            for name in re.findall(r'"(--[^"]+)"', call.group(1)):
                spelt[name].add(module.name)
    twice = {name: sorted(modules) for name, modules in spelt.items() if len(modules) > 1 and name not in OWN_SPELLING}
    assert twice == {}, f"define these once in synthmed/cli/options.py: {twice}"


def test_a_shared_option_reads_the_same_in_every_command():
    seen = defaultdict(set)
    for command in _commands().values():
        for name, param in _options(command).items():
            if name not in OWN_SPELLING:
                seen[name].add((param.help, _type(param), param.multiple, param.is_flag))
    assert {name: shapes for name, shapes in seen.items() if len(shapes) > 1} == {}


def test_model_is_a_fitted_model_folder_and_split_one_split_everywhere():
    commands = _commands()
    with_model = {name for name, command in commands.items() if "--model" in _options(command)}
    assert with_model == {"generate", "interpolate", "compress"}
    for name in with_model:
        assert "Path" in _type(_options(commands[name])["--model"]), name
    for name, command in commands.items():
        options = _options(command)
        assert "--weights" not in options or name == "train"
        if "--split" in options:
            assert not options["--split"].multiple, name
        if "--splits" in options:
            assert options["--splits"].multiple, name
    assert {name for name, command in commands.items() if "--split" in _options(command)} == {"evaluate"}
    assert {name for name, command in commands.items() if "--splits" in _options(command)} == {
        "augment", "compress", "generate", "gradcam"}


def _old_spellings() -> dict[tuple[str, str], str]:
    """(command, old spelling) -> new spelling, from the hidden options."""
    found = {}
    for name, command in _commands().items():
        for old, param in _options(command, hidden=True).items():
            found[(name, old)] = re.fullmatch(r"Old spelling of (--[a-z-]+)\.", param.help).group(1)
    return found


def test_every_old_spelling_is_listed_in_decisions():
    text = (REPO / "docs" / "decisions.md").read_text(encoding="utf-8")
    section = text.split("## Option names", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip() for line in section.splitlines() if line.strip().startswith("| `")]
    old = _old_spellings()
    assert ("train", "--model") in old and ("interpolate", "--weights") in old
    for (command, spelling), new in old.items():
        assert any(f"| `{command}` |" in row and f"`{spelling}" in row and f"`{new}" in row for row in rows), (command, spelling)


def _documented_commands():
    """(file, command, tokens) for each `synthmed COMMAND ...` line of the docs, README and example."""
    files = [REPO / "README.md", REPO / "examples" / "quickstart.sh",
             *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "decisions.md")]
    names = set(_commands())
    for path in files:
        text = path.read_text(encoding="utf-8").replace("\\\n", " ")
        for line in text.splitlines():
            for match in re.finditer(r"synthmed (\w[\w-]*)((?:\s+[^`|;)\n]+)?)", line):
                if match.group(1) in names:
                    yield path.name, match.group(1), match.group(2).split()
        # The demo's train options live in a bash array.
        for match in re.finditer(r"^train=\((.*)\)$", text, flags=re.M):
            yield path.name, "train", shlex.split(match.group(1))


def test_the_docs_use_no_old_spelling():
    old = _old_spellings()
    blocks = list(_documented_commands())
    assert sum(1 for _, command, _ in blocks if command == "train") >= 3
    used = sorted({(path, command, token) for path, command, tokens in blocks for token in tokens
                   if (command, token) in old})
    assert used == []


@pytest.mark.parametrize("args", [["train", "--help"], ["gradcam", "--help"], ["preprocess", "--help"]])
def test_old_spellings_are_not_offered_in_help(run, args):
    result = run(*args)
    assert result.code == 0
    hidden = {old for command, old in _old_spellings() if command == args[0]}
    assert hidden and not any(re.search(rf"{re.escape(old)}(?![\w-])", result.out) for old in hidden)


def test_old_spellings_are_not_completed():
    from synthmed.cli.completion import describe_cli

    _, commands = describe_cli()
    offered = {(c.name, name) for c in commands for option in c.options for name in option.names}
    assert ("train", "--classifier") in offered and ("interpolate", "--mix-weights") in offered
    assert not set(_old_spellings()) & offered
