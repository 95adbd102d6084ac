"""Plugins: inline ones, a real installed package with an entry point, a broken one, the allow-list."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from synthmed import hookimpl
from synthmed.errors import UnknownNameError
from synthmed.plugins import get_plugin_manager
from synthmed.registry import GeneratorInfo, get_entry, list_entries


class InlineGenerators:
    @hookimpl
    def register_generators(self, register):
        register("inline-noise", lambda **kw: ("made", kw), conditioning="class")


@pytest.fixture
def inline_plugin():
    pm = get_plugin_manager()
    pm.register(InlineGenerators(), name="inline-test")
    try:
        yield
    finally:
        pm.unregister(name="inline-test")


def test_inline_plugin_registers_and_unregisters(inline_plugin):
    entry = get_entry("generator", "inline-noise")
    assert entry.plugin == "inline-test" and entry.info == GeneratorInfo(conditioning="class")
    assert entry.factory(size=3) == ("made", {"size": 3})
    assert entry.tag.startswith("inline-noise@")


def test_unknown_name_lists_what_exists():
    with pytest.raises(UnknownNameError, match=r"unknown augmentation 'nope'; available: none"):
        get_entry("augmentation", "nope")


def test_duplicate_names_are_refused(inline_plugin):
    pm = get_plugin_manager()
    pm.register(InlineGenerators(), name="inline-twin")
    try:
        with pytest.raises(ValueError, match="registered twice"):
            list_entries("generator")
    finally:
        pm.unregister(name="inline-twin")


def test_builtins_are_plugins(run):
    record = json.loads(run("plugins", "--json").out)
    builtin = {p["name"]: p for p in record["plugins"] if p["origin"] == "builtin"}
    assert "none" in builtin["synthmed.default_plugins.augmentations"]["registers"]["augmentation"]
    assert builtin["synthmed.default_plugins.readers"]["hooks"] == ["read_image"]


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory):
    """Install the example and the broken plugin packages with pip into a private folder."""
    target = tmp_path_factory.mktemp("site")
    packages = [REPO / "tests" / "plugin_packages" / name for name in ("synthmed-example", "synthmed-broken")]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), *map(str, packages)],
        check=True,
        capture_output=True,
    )
    return target


def synthmed_cli(site, *args, plugins=None):
    env = {k: v for k, v in os.environ.items() if k != "SYNTHMED_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    if plugins is not None:
        env["SYNTHMED_PLUGINS"] = plugins
    return subprocess.run([sys.executable, "-m", "synthmed", *args], capture_output=True, text=True, env=env)


def test_installed_plugin_and_broken_plugin(installed_plugins):
    result = synthmed_cli(installed_plugins, "plugins", "--json", plugins="example,broken")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    example = plugins["example"]
    assert example["version"] == "1.2.3" and example["origin"] == "entry point"
    assert example["registers"]["classifier"] == ["example-linear"]
    assert example["registers"]["augmentation"] == ["example-invert"]
    assert example["registers"]["command"] == ["example-hello"]
    assert plugins["broken"]["status"].startswith("failed: ModuleNotFoundError")
    # The table shows the failure too, and the plugin's command works.
    table = synthmed_cli(installed_plugins, "plugins", plugins="example,broken")
    assert "failed" in table.stdout and "example-linear" in table.stdout
    hello = synthmed_cli(installed_plugins, "example-hello", "--name", "mri", plugins="example,broken")
    assert hello.returncode == 0 and hello.stdout == "hello mri\n"


def test_broken_plugin_is_named_when_its_names_are_asked_for(installed_plugins):
    result = synthmed_cli(installed_plugins, "info", "/nonexistent", plugins="example,broken")
    assert result.returncode == 2 and "no such directory" in result.stderr  # other commands unaffected
    code = (
        "from synthmed.registry import get_entry\n"
        "try:\n    get_entry('generator', 'from-broken')\nexcept Exception as e:\n    print(e)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(installed_plugins), str(REPO)]), SYNTHMED_PLUGINS="broken")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    assert "unknown generator 'from-broken'" in out and "failed to load: broken" in out


def test_allow_list_restricts_installed_plugins(installed_plugins):
    only_none = json.loads(synthmed_cli(installed_plugins, "plugins", "--json", plugins="").stdout)
    assert {p["origin"] for p in only_none["plugins"]} == {"builtin"}
    only_example = json.loads(synthmed_cli(installed_plugins, "plugins", "--json", plugins="example").stdout)
    names = {p["name"] for p in only_example["plugins"]}
    assert "example" in names and "broken" not in names
    everything = json.loads(synthmed_cli(installed_plugins, "plugins", "--json").stdout)
    assert {"example", "broken"} <= {p["name"] for p in everything["plugins"]}
