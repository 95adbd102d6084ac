"""The `synthmed` command line: one thin module per subcommand (parse, call, print).

Nothing heavy loads before it is needed: `--version` answers from here alone, the Typer app
(synthmed.cli.app) makes only the command that runs, and command modules import torch and
friends inside their functions, so `synthmed --help` and completion stay instant.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any

from synthmed.errors import SynthmedError

# (command name, module, function). A command appears here only once it works.
BUILTIN_COMMANDS: list[tuple[str, str, str]] = [
    ("preprocess", "synthmed.cli.preprocess", "preprocess"),
    ("generate", "synthmed.cli.generate", "generate"),
    ("mix", "synthmed.cli.mix", "mix"),
    ("augment", "synthmed.cli.augment", "augment"),
    ("train", "synthmed.cli.train", "train"),
    ("evaluate", "synthmed.cli.evaluate", "evaluate"),
    ("compare", "synthmed.cli.compare", "compare"),
    ("study", "synthmed.cli.study", "study"),
    ("gradcam", "synthmed.cli.gradcam", "gradcam"),
    ("interpolate", "synthmed.cli.interpolate", "interpolate"),
    ("compress", "synthmed.cli.compress", "compress"),
    ("sample-data", "synthmed.cli.sample_data", "sample_data"),
    ("info", "synthmed.cli.info", "info"),
    ("plugins", "synthmed.cli.plugins", "plugins"),
]

HELP = """Synthetic-data augmentation for small medical-imaging datasets.

Every command reads dataset folders and writes a new one (`-o OUT`); on success the output path is the only thing printed on stdout, so commands chain with $(...)."""


def make_app(*, with_plugins: bool = True) -> Any:
    """A fresh Typer app with the built-in commands and those plugins register."""
    from synthmed.cli.app import make_app as make

    return make(with_plugins=with_plugins)


def _error(message: str) -> None:
    sys.stderr.write(f"synthmed: error: {message}\n")


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread so that outputs being written are cleaned up (an
    `OutputFolder` discards its unfinished folder, or keeps it for --resume) before exiting."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(128 + signum)


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises `Terminated` while a command runs (the main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("SYNTHMED_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    if args == ["--version"]:  # before Typer and the plugins load
        from synthmed import __version__

        sys.stdout.write(f"synthmed {__version__}\n")
        return _exit(0, argv)
    import typer
    from typer.exceptions import TyperException

    try:
        with _sigterm_raises():
            command = typer.main.get_command(make_app())
            result = command.main(args=args, prog_name="synthmed", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        _error("interrupted; commands that take --resume continue where they stopped")
        code = 130
    except Terminated as exc:
        _error("terminated; commands that take --resume continue where they stopped")
        code = int(exc.code)
    except TyperException as exc:  # click's usage errors, as vendored by Typer
        if debug:
            raise
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "synthmed"
        _error(f"{exc.format_message()} (see `{where} --help`)")
        code = getattr(exc, "exit_code", 2)
    except SynthmedError as exc:
        if debug:
            raise
        _error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        code = exc.exit_code
    except BrokenPipeError:
        code = 0  # `synthmed ... | head` closing the pipe is not an error
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if debug:
            raise
        _error(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (rerun with --debug for a traceback)")
        code = 1
    return _exit(code, argv)


def _exit(code: int, argv: list[str] | None) -> int:
    if argv is None:
        sys.exit(code)
    return code
