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
