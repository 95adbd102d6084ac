"""The committed completion scripts match the CLI, and bash completes with them."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO
from synthmed.cli.completion import render_all


def test_completion_scripts_are_up_to_date():
    for name, text in render_all().items():
        committed = (REPO / "completions" / name).read_text(encoding="utf-8")
        assert committed == text, f"completions/{name} is stale: run `make completions`"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_commands_and_options():
    script = REPO / "completions" / "synthmed.bash"

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        program = (
            f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
            '_synthmed; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        return subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split()

    assert "sample-data" in complete("synthmed", "sam")
    assert complete("synthmed", "sample-data", "--sc") == ["--scale"]


def _bash_complete(*words: str) -> list[str]:
    import shlex

    script = REPO / "completions" / "synthmed.bash"
    program = (f"source {script}; COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); "
               f'COMP_CWORD={len(words) - 1}; _synthmed; printf "%s\\n" "${{COMPREPLY[@]}}"')
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split()


def test_bash_completes_the_values_of_options():
    from synthmed.registry import list_entries

    builtin = [n for n, e in list_entries("generator").items() if e.plugin.startswith("synthmed.")]
    assert _bash_complete("synthmed", "generate", "--generator", "") == builtin
    assert _bash_complete("synthmed", "train", "--device", "c") == ["cpu", "cuda"]
    assert _bash_complete("synthmed", "gradcam", "--splits", "t") == ["train", "test"]
    assert "resnet18" in _bash_complete("synthmed", "train", "--classifier", "")
    assert "jpeg" in _bash_complete("synthmed", "compress", "--codec", "")  # not -c of train
    assert "medical" in _bash_complete("synthmed", "augment", "--policy", "me")
    assert _bash_complete("synthmed", "interpolate", "--autoencoder", "u") == ["unet-ae"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed (apt-get install zsh)")
def test_zsh_script_parses_and_offers_values_and_descriptions():
    script = REPO / "completions" / "_synthmed"
    assert subprocess.run(["zsh", "-n", str(script)], capture_output=True, text=True).returncode == 0
    text = script.read_text(encoding="utf-8")
    assert ":value:(auto cpu cuda)'" in text and ":value:(ddpm acgan dcgan)'" in text
    # every command's description is the first line of its help, with no quote or colon to break the spec
    for line in text.splitlines():
        if line.startswith("        '") and line.endswith("'") and ":" in line:
            name, description = line.strip().strip("'").split(":", 1)
            assert name and description and "'" not in description and ":" not in description, line
    # loaded into a real zsh with compinit, the function is defined for synthmed
    program = f"fpath=({script.parent} $fpath); autoload -U compinit; compinit -u -D; print -r -- ${{_comps[synthmed]}}"
    result = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, env={"HOME": "/tmp"})
    assert result.stdout.strip() == "_synthmed", result.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed (apt-get install fish)")
def test_fish_completes_commands_options_and_values():
    script = REPO / "completions" / "synthmed.fish"
    assert subprocess.run(["fish", "-n", str(script)], capture_output=True, text=True).returncode == 0

    def complete(line: str) -> list[str]:
        program = f"source {script}; complete -C {line!r}"
        out = subprocess.run(["fish", "--no-config", "-c", program], capture_output=True, text=True, check=True).stdout
        return [row.split("\t")[0] for row in out.splitlines()]

    assert "sample-data" in complete("synthmed sam")
    assert "--scale" in complete("synthmed sample-data --sc")
    assert complete("synthmed train --device ") == ["auto", "cpu", "cuda"]
    assert set(complete("synthmed generate --generator ")) >= {"ddpm", "acgan", "dcgan"}


def test_the_offered_values_are_their_owners():
    from synthmed.cli.completion import VALUES
    from synthmed.data import SOURCES, SPLITS
    from synthmed.generate.selection import SELECT_BY
    from synthmed.gradcam.cam import METHODS
    from synthmed.registry import list_entries
    from synthmed.train.settings import AMP_MODES

    def builtin(kind):
        return [n for n, e in list_entries(kind).items() if e.plugin.startswith("synthmed.")]

    for option, kind in (("--generator", "generator"), ("--classifier", "classifier"),
                         ("--autoencoder", "autoencoder"), ("--policy", "augmentation"), ("--augment", "augmentation")):
        assert VALUES[option] == builtin(kind), option
    codecs = builtin("codec")
    assert [n for n in VALUES["--codec"] if n in codecs] == codecs  # all of them (some need optional libraries)
    assert VALUES["--split"] == VALUES["--splits"] == list(SPLITS) and VALUES["--source"] == list(SOURCES)
    assert VALUES["--method"] == list(METHODS) and VALUES["--amp"] == list(AMP_MODES)
    assert VALUES["--select-by"] == list(SELECT_BY)
    from synthmed.compress.learned import DISTORTIONS

    assert VALUES["--distortion"] == list(DISTORTIONS)
