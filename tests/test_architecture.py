"""The import rules of docs/architecture.md: a capability imports the shared ground and itself,
never another capability (study/ excepted); the shared ground imports no capability."""

from __future__ import annotations

import ast

from conftest import REPO

CAPABILITIES = {"preprocess", "mix", "generate", "augment", "train", "evaluate", "gradcam", "interpolate", "compress",
                "study"}
ABOVE_THE_GROUND = {"cli", "default_plugins"}  # may import any capability


def imported(tree: ast.AST) -> set[str]:
    """Every synthmed module a file imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("synthmed.")}


def test_capabilities_reach_each_other_only_through_the_registry():
    package = REPO / "synthmed"
    broken = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        owner = parts[0] if len(parts) > 1 else None  # None: a shared-ground module at the top
        if owner in ABOVE_THE_GROUND or owner == "study":
            continue
        for name in imported(ast.parse(path.read_text(encoding="utf-8"))):
            target = name.split(".")[1]
            if target in CAPABILITIES and target != owner:
                broken.append(f"{path.relative_to(REPO)} imports {name}")
    assert broken == []


MAX_MODULE_LINES = 400  # past this a module holds more than one concern; split it by concern


def test_no_module_grows_into_a_god_module():
    modules = [*REPO.joinpath("synthmed").rglob("*.py"), *REPO.joinpath("plugins").rglob("*.py")]
    too_long = {str(path.relative_to(REPO)): lines for path in modules
                if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert modules and not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
