"""The `synthmed` command line: one thin module per subcommand (parse, call, print).

Modules here import only typer/rich at load time; torch and friends are imported
inside the command functions, so `synthmed --help` and completion stay instant.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated, Optional

import typer

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


def _version_callback(value: bool) -> None:
    if value:
        from synthmed import __version__

        typer.echo(f"synthmed {__version__}")
        raise typer.Exit()


def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on errors (also SYNTHMED_DEBUG=1).")] = False,
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """Synthetic-data augmentation for small medical-imaging datasets."""


def make_app(*, with_plugins: bool = True) -> typer.Typer:
    """A fresh Typer app with the built-in commands and those plugins register."""
    app = typer.Typer(
        name="synthmed",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,  # static scripts in completions/ instead (see synthmed.cli.completion)
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    for name, module_name, attr in BUILTIN_COMMANDS:
        module = importlib.import_module(module_name)
        app.command(name)(getattr(module, attr))
    if with_plugins:
        from synthmed.plugins import get_plugin_manager

        get_plugin_manager().hook.register_commands(app=app)
    return app


def _error(message: str) -> None:
    sys.stderr.write(f"synthmed: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    from typer.exceptions import TyperException

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("SYNTHMED_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        command = typer.main.get_command(make_app())
        result = command.main(args=args, prog_name="synthmed", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        _error("interrupted; commands that take --resume continue where they stopped")
        code = 130
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
    if argv is None:
        sys.exit(code)
    return code
