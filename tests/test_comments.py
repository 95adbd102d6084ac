"""Comments stand alone: no references to documents outside the repository, and every module
says in its docstring what it owns."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("synthmed", "plugins", "tests", "benchmarks")
# Spelled in pieces so that this file does not match itself.
OUTSIDE = re.compile("|".join([r"DESIGN" + r"\.md", r"BRIEF" + r"\.md", r"\bcontract" + r" \d", r"\bthe" + r" issue\b",
                               r"\bissue" + r" \d"]), re.IGNORECASE)


def sources():
    for folder in FOLDERS:
        yield from sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_no_references_to_documents_outside_the_repository():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in sources()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if OUTSIDE.search(line)]
    assert found == []


def test_every_module_has_a_docstring():
    missing = [str(path.relative_to(ROOT)) for path in sources()
               if path.stat().st_size and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert missing == []
