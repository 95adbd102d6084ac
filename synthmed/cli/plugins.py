"""`synthmed plugins`: what is installed and what each plugin registers."""

from __future__ import annotations

import json as jsonlib
import sys

from synthmed.cli.options import Json


def plugins(json: Json = False) -> None:
    """List plugins with their versions and the names each registers; broken plugins are shown with the reason."""
    from synthmed.plugins import failed_plugins, get_plugin_manager, plugin_info
    from synthmed.registry import KINDS, list_entries

    pm = get_plugin_manager()
    by_plugin: dict[str, dict[str, list[str]]] = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        by_plugin[name] = {kind: [] for kind in KINDS}
        by_plugin[name]["command"] = []
    for kind in KINDS:
        for entry in list_entries(kind).values():
            by_plugin.setdefault(entry.plugin, {k: [] for k in (*KINDS, "command")})[kind].append(entry.name)
    for name, commands in _plugin_commands(pm).items():
        by_plugin.setdefault(name, {k: [] for k in (*KINDS, "command")})["command"].extend(commands)

    records = []
    for name, registered in by_plugin.items():
        info = plugin_info(name)
        plugin = pm.get_plugin(name)
        # Hooks that answer rather than register (read_image), so such plugins do not look empty.
        hooks = [impl.name for impl in pm.get_hookcallers(plugin) or [] if not impl.name.startswith("register_")]
        records.append({"name": name, "version": info.version, "origin": info.origin, "status": "ok",
                        "registers": registered, "hooks": sorted(hooks)})
    for name, reason in failed_plugins().items():
        records.append({"name": name, "version": "", "origin": "entry point", "status": f"failed: {reason}", "registers": {}})

    if json:
        sys.stdout.write(jsonlib.dumps({"plugins": records}, indent=2) + "\n")
        return
    from rich.console import Console

    Console(file=sys.stdout).print(plugins_table(records))


def plugins_table(records: list[dict]):  # noqa: ANN201 - a rich Table
    """One row per plugin: the built-in modules are one plugin, `synthmed`; what each
    registers goes one kind per line, so names wrap at commas rather than being cut."""
    from rich.markup import escape
    from rich.table import Table

    rows: dict[str, dict] = {}
    for record in records:
        builtin = record["origin"] == "builtin"
        name = "synthmed (built-in)" if builtin else record["name"]
        row = rows.setdefault(name, {"version": record["version"], "origin": record["origin"], "parts": [],
                                     "status": record["status"]})
        if record["status"] != "ok":
            row["status"] = record["status"]
        row["parts"] += [f"{kind}s: {', '.join(names)}" for kind, names in record["registers"].items() if names]
        row["parts"] += [f"hook: {hook}" for hook in record.get("hooks", [])]
    table = Table(title="synthmed plugins")
    table.add_column("plugin", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("origin", no_wrap=True)
    table.add_column("registers", overflow="fold")
    for name, row in rows.items():
        detail = "\n".join(escape(p) for p in row["parts"]) if row["status"] == "ok" else f"[red]{escape(row['status'])}[/red]"
        table.add_row(escape(name), row["version"], row["origin"], detail or "-")
    return table


def _plugin_commands(pm) -> dict[str, list[str]]:  # noqa: ANN001
    """Command names each plugin adds, found by letting it register into a scratch app."""
    import typer

    found: dict[str, list[str]] = {}
    for impl in pm.hook.register_commands.get_hookimpls():
        scratch = typer.Typer()
        impl.function(app=scratch)
        names = [c.name or c.callback.__name__.replace("_", "-") for c in scratch.registered_commands]
        names += [g.name or "" for g in scratch.registered_groups]
        found[pm.get_name(impl.plugin)] = names
    return found
