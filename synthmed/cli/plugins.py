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
    from rich.table import Table

    table = Table(title="synthmed plugins")
    for column in ("plugin", "version", "origin", "registers"):
        table.add_column(column)
    for record in records:
        parts = [f"{kind}s: {', '.join(names)}" for kind, names in record["registers"].items() if names]
        parts += [f"hook: {hook}" for hook in record.get("hooks", [])]
        detail = "; ".join(parts) if record["status"] == "ok" else f"[red]{record['status']}[/red]"
        table.add_row(record["name"], record["version"], record["origin"], detail or "-")
    Console(file=sys.stdout).print(table)


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
