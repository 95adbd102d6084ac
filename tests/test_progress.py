"""The progress protocol: engines send events, only the command line draws them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from synthmed.progress import Advanced, Finished, Started, start_task

PACKAGE = Path(__file__).resolve().parents[1] / "synthmed"


def test_a_task_sends_started_advanced_finished():
    events = []
    with start_task(events.append, "sampling", total=3, unit="img", done=1) as task:
        task(2, loss=0.5)
    started, advanced, finished = events
    assert started == Started(task.id, "sampling", 3, "img", 1)
    assert advanced == Advanced(task.id, "sampling", 2, {"loss": 0.5})
    assert finished == Finished(task.id, "sampling")
    other = start_task(events.append, "sampling", total=None)
    assert other.id != task.id


def test_a_task_cut_short_sends_no_finished():
    events = []
    with pytest.raises(KeyboardInterrupt):
        with start_task(events.append, "fitting", total=5) as task:
            task()
            raise KeyboardInterrupt
    assert [type(e) for e in events] == [Started, Advanced]


def test_engines_report_through_events(tmp_path):
    from synthmed.data.sample import write_sample_dataset

    events = []
    write_sample_dataset(tmp_path / "d", size=16, scale=0.01, progress=events.append)
    started = [e for e in events if isinstance(e, Started)]
    assert [e.description for e in started] == ["drawing phantoms"]
    assert sum(e.n for e in events if isinstance(e, Advanced)) == started[0].total
    assert isinstance(events[-1], Finished)


def test_the_display_draws_events_as_bars():
    from synthmed.cli.output import ProgressDisplay

    display = ProgressDisplay(quiet=True)
    with display:
        with start_task(display, "fitting", total=10, unit="epoch") as task:
            task(1, **{"val loss": 0.25})
            task(2)
        bar = display.bars.tasks[0]
        assert (bar.description, bar.completed, bar.fields["unit"]) == ("fitting", 3, "epoch")
        assert bar.fields["status"] == "val loss 0.25"
        assert bar.total == 3  # finished early (early stopping): shown complete


def test_only_the_command_line_draws():
    """No module outside synthmed/cli imports rich, so engines cannot draw."""
    drawing = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "rich" or name.startswith("rich.") for name in names):
                drawing.append(str(path.relative_to(PACKAGE)))
    assert drawing == []
