"""Every fenced `python` block of README.md and docs/*.md runs, at a tiny size.

A block runs as written in a fresh folder, after the setup its page needs (a tiny sample
dataset named `data`, a Grad-CAM output named `OUT`, the names a snippet takes as given such as
`images` or `MyPlugin`) and before a check of what it should have produced. The setup only
provides inputs; the block's own lines are not edited, except that a placeholder path is
pointed at a file the run really wrote."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from blocks import FENCE, PAGES, REPO


def python_blocks() -> list[tuple[str, int, str]]:
    """(page name, line, code) of every fenced python block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) == "python":
                found.append((page.name, text[: match.start()].count("\n") + 1, match.group(2)))
    return found


def _sample(work: Path) -> None:
    from synthmed.data.sample import write_sample_dataset

    write_sample_dataset(work / "data", size=16, scale=0.03, seed=0)


def _gradcam_out(work: Path) -> None:
    _sample(work)
    run = [sys.executable, "-m", "synthmed"]
    subprocess.run([*run, "train", "data", "-o", "run", "--classifier", "cnn-basic", "--epochs", "1", "--quiet"],
                   cwd=work, check=True)
    subprocess.run([*run, "gradcam", "run", "data", "-o", "OUT", "--limit", "1", "--no-figures", "--quiet"],
                   cwd=work, check=True)


def _my_plugin(namespace: dict) -> None:
    """What plugins.md's my_plugin.py block defines, as the `MyPlugin` its test snippet registers."""
    code = next(code for page, _, code in python_blocks() if page == "plugins.md" and "my_plugin.py" in code)
    module = types.ModuleType("my_plugin")
    exec(compile(code, "plugins.md:my_plugin.py", "exec"), module.__dict__)  # noqa: S102 - the docs' own code
    namespace["MyPlugin"] = lambda: module


def _setup(page: str, code: str, work: Path, namespace: dict) -> str:
    """Prepare `work` and `namespace` for one block; returns the code to run."""
    if page == "dataset.md":
        _sample(work)
    elif page == "augment.md":
        import torch

        namespace.update(torch=torch, images=torch.rand(4, 1, 16, 16))
    elif page == "gradcam.md":
        _gradcam_out(work)
        written = sorted((work / "OUT" / "maps").rglob("*.safetensors"))
        assert written, "gradcam wrote no maps"
        named = re.search(r'"(OUT/maps/[^"]+\.safetensors)"', code)
        assert named, "the gradcam snippet no longer names a maps file"
        code = code.replace(named.group(1), str(written[0].relative_to(work)))
    elif page == "plugins.md" and "pm.register(MyPlugin()" in code:
        _my_plugin(namespace)
    return code


def _check(page: str, code: str, work: Path, namespace: dict) -> None:
    """What a block must have produced."""
    if "image_dataset(" in code:
        image, label = namespace["image"], namespace["label"]
        assert image.dtype.is_floating_point is False and image.ndim == 3
        assert 0 <= label < len(namespace["train"].classes)
    if "OutputFolder(" in code:
        assert (work / "report" / "notes.txt").read_text() == "..."
        assert not list(work.glob(".report.partial*"))
    if "data.load_images(" in code:
        assert namespace["images"].shape[0] == len(namespace["rows"]) == len(namespace["labels"])
    if "create_policy(" in code:
        assert tuple(namespace["augmented"].shape) == (4, 1, 16, 16)
    if "load_file(" in code:
        assert namespace["heat"].ndim == 2
    if "register_classifiers" in code:
        assert "register_classifiers" in namespace
    if "pm.unregister(" in code:
        from synthmed import list_classifiers

        assert "tiny-linear" not in list_classifiers()  # registered inside the block, gone after it


BLOCKS = python_blocks()


def test_the_docs_have_python_blocks_to_run():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(("page", "line", "code"), BLOCKS, ids=[f"{p}:{n}" for p, n, _ in BLOCKS])
def test_each_python_block_runs(page, line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"doc_{page.replace('.', '_')}_{line}"}
    code = _setup(page, code, tmp_path, namespace)
    exec(compile(code, f"{page}:{line}", "exec"), namespace)  # noqa: S102 - the docs' own code
    _check(page, code, tmp_path, namespace)


def test_the_plugin_snippet_registers_what_it_says(tmp_path):
    from synthmed import create_classifier, list_classifiers
    from synthmed.plugins import get_plugin_manager

    namespace: dict = {}
    _my_plugin(namespace)
    pm = get_plugin_manager()
    pm.register(namespace["MyPlugin"](), name="my-test-plugin")
    try:
        assert "tiny-linear" in list_classifiers()
        net = create_classifier("tiny-linear", num_classes=3, in_channels=1, image_size=32)
        assert net(__import__("torch").zeros(2, 1, 32, 32)).shape == (2, 3)
    finally:
        pm.unregister(name="my-test-plugin")
    assert REPO.is_dir()
