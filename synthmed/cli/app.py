"""The Typer app behind `synthmed`, with the built-in commands made only when asked for.

Turning a command function into a click command (Typer reads every option's annotation) is
most of the CLI's start-up time, so `synthmed --help` lists the built-ins from their
docstrings, read from the source without importing the modules (which load Rich), and
`synthmed train ...` makes `train` alone. Help is click's plain text: Rich's
help renderer alone costs more than twice a bare interpreter start. Plugin commands (the
`register_commands` hook) are added the usual Typer way.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, Callable, Optional

import typer
from typer.core import TyperGroup

try:  # the click that Typer runs on: vendored in recent Typer, the click package before
    from typer._click.utils import make_default_short_help
except ImportError:  # pragma: no cover - older Typer
    from click.utils import make_default_short_help

from synthmed.cli import BUILTIN_COMMANDS, HELP

SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def _where(name: str) -> tuple[str, str]:
    return next((module, attr) for command, module, attr in BUILTIN_COMMANDS if command == name)


def builtin_function(name: str) -> Callable[..., Any]:
    module_name, attr = _where(name)
    return getattr(importlib.import_module(module_name), attr)


def builtin_docstring(name: str) -> str:
    """The docstring of a built-in command's function, read from its source file."""
    module_name, attr = _where(name)
    source = importlib.util.find_spec(module_name).origin
    with open(source, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), source)
    function = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == attr)
    return ast.get_docstring(function) or ""


class Commands(MutableMapping):
    """name -> click command; a built-in one is made on first access, others are kept as given."""

    def __init__(self, given: dict[str, Any]) -> None:
        self.made = dict(given)
        self.builtins = [name for name, _, _ in BUILTIN_COMMANDS]

    def __getitem__(self, name: str) -> Any:
        if name not in self.made:
            if name not in self.builtins:
                raise KeyError(name)
            single = typer.Typer(rich_markup_mode=None, add_completion=False, context_settings=SETTINGS)
            single.command(name)(builtin_function(name))
            self.made[name] = typer.main.get_command(single)
        return self.made[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.made[name] = command

    def __delitem__(self, name: str) -> None:
        del self.made[name]

    def __iter__(self) -> Iterator[str]:
        yield from self.builtins
        yield from (name for name in self.made if name not in self.builtins)

    def __len__(self) -> int:
        return len(self.builtins) + sum(name not in self.builtins for name in self.made)


class OnDemandGroup(TyperGroup):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = Commands(dict(self.commands))

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Typer's listing, with short help from the docstrings of commands not made yet."""
        made = self.commands.made
        names = [name for name in self.commands if name not in made or not made[name].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, made[name].get_short_help_str(limit) if name in made
                 else make_default_short_help(builtin_docstring(name), limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
        cls=OnDemandGroup,
        no_args_is_help=True,
        add_completion=False,  # static scripts in completions/ instead (see synthmed.cli.completion)
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings=SETTINGS,
    )
    app.callback()(_root)
    if with_plugins:
        from synthmed.plugins import get_plugin_manager

        get_plugin_manager().hook.register_commands(app=app)
    return app
