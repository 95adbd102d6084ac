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


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_log_prints_every_tenth_with_rate_eta_and_status():
    from synthmed.cli.output import ProgressLog

    clock, lines = FakeClock(), []
    log = ProgressLog(clock=clock, write=lines.append)
    with start_task(log, "sampling", total=100, unit="img") as task:
        for _ in range(100):
            clock.now += 0.5
            task(1, loss=0.25)
    assert len(lines) == 11  # started, 10 %, ..., 90 %, done
    assert lines[0].endswith("sampling 0/100 img (0%), started\n")
    assert lines[1].endswith("sampling 10/100 img (10%), 2.0 img/s, eta 45s, loss 0.25\n")
    assert lines[-1].endswith("sampling 100/100 img (100%), 2.0 img/s, done in 50s, loss 0.25\n")


def test_the_log_prints_every_30_seconds_when_slow_and_counts_from_a_resume():
    from synthmed.cli.output import ProgressLog

    clock, lines = FakeClock(), []
    log = ProgressLog(clock=clock, write=lines.append)
    with start_task(log, "fitting ddpm", total=1000, unit="epoch", done=500) as task:
        for _ in range(3):
            clock.now += 20
            task(1)
    assert lines[0].endswith("fitting ddpm 500/1000 epoch (50%), resumed\n")
    # 20 s: nothing; 40 s: a line (30 s since the last), rate from the resumed count on
    assert lines[1].endswith("fitting ddpm 502/1000 epoch (50%), 20.0 s/epoch, eta 2h46m\n")
    assert len(lines) == 3 and "done in 1m00s" in lines[2]


def test_the_log_handles_unknown_totals_and_quiet():
    from synthmed.cli.output import ProgressLog

    clock, lines = FakeClock(), []
    with start_task(ProgressLog(clock=clock, write=lines.append), "reading", total=None, unit="file") as task:
        clock.now += 31
        task(7)
    assert lines[1].endswith("reading 7 file, 4.4 s/file\n")  # under 1 a second: seconds per unit
    silent = []
    with start_task(ProgressLog(quiet=True, write=silent.append), "reading", total=3) as task:
        task(3)
    assert silent == []


def test_the_bars_show_rate_and_time_left_from_the_first_update():
    from synthmed.cli.output import ProgressDisplay

    clock = FakeClock()
    display = ProgressDisplay(clock=clock, quiet=True)  # bars not drawn, columns still rendered
    with start_task(display, "sampling", total=10, unit="img") as task:
        clock.now += 2
        task(1)
        column = display.bars.columns[-1]
        text = column.render(display.bars.tasks[0]).plain
    assert text == "2.0 s/img  eta 18s"  # under one a second: seconds per image


def test_commands_print_plain_progress_lines_when_stderr_is_a_file(tmp_path):
    import subprocess
    import sys

    log = tmp_path / "log.txt"
    with open(log, "w") as handle:
        code = subprocess.call([sys.executable, "-m", "synthmed", "sample-data", "-o", str(tmp_path / "d"),
                                "--size", "16", "--scale", "0.02"], stderr=handle, stdout=subprocess.DEVNULL)
    text = log.read_text()
    assert code == 0
    assert "drawing phantoms 0/" in text and "done in" in text and "\x1b[" not in text
    quiet = subprocess.run([sys.executable, "-m", "synthmed", "sample-data", "-o", str(tmp_path / "q"), "--size", "16",
                            "--scale", "0.02", "--quiet"], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ""
