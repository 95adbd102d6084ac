"""Command blocks of README.md and docs/*.md: which run, which are synopses, and the
synthmed command lines in each (for checking their options against the command line)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    text: str
    not_run: str | None  # why the suite does not run it (a `<!-- not run: ... -->` line above it)

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang == "sh" and self.not_run is None


def blocks(page: Path) -> list[Block]:
    """The blocks of a page that hold shell commands: fenced `sh`, or unlabelled synopses."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        if lang not in ("sh", "") or not re.search(r"^\s*\S*synthmed\b|\bmake\b|^pip ", body, re.M):
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NOT_RUN.search(before)
        found.append(Block(page, text[: match.start()].count("\n") + 1, lang, body, reason.group(1) if reason else None))
    return found


def command_lines(text: str) -> list[list[str]]:
    """The argument lists after each `synthmed` in `text` (continuations joined, comments,
    `$(`, pipes and placeholders such as `[options]` or `...` left out)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        line = line.replace("$(", " ").replace(")", " ) ")
        line = re.sub(r"\[([^\[\]]*)\]", r" \1 ", line)  # synopsis brackets: their options count
        line = re.sub(r"\[([^\[\]]*)\]", r" \1 ", line)
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            tokens = line.split()
        for i, token in enumerate(tokens):
            if token == "synthmed" or token.endswith("/synthmed"):
                args = []
                for arg in tokens[i + 1:]:
                    if arg in (")", "|", "&&", ";", "&", ">", "2>", ">/dev/null") or arg.startswith(">"):
                        break
                    args.append(arg)
                commands.append(args)
    return commands
