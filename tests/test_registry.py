"""The typed registry: what registration keywords become, refused keywords, one fill per
plugin-manager state, old names as aliases, and the naming rule."""

from __future__ import annotations

import dataclasses
import re

import pytest

from synthmed import hookimpl, hookspecs
from synthmed.plugins import get_plugin_manager
from synthmed.registry import (
    KINDS,
    ClassifierInfo,
    RegistrationError,
    get_entry,
    list_classifiers,
    list_entries,
)


@pytest.fixture
def inline():
    """Register plugin objects inline; unregistered after the test."""
    pm = get_plugin_manager()
    names: list[str] = []

    def add(plugin: object, name: str) -> None:
        pm.register(plugin, name=name)
        names.append(name)

    yield add
    for name in names:
        pm.unregister(name=name)


class Classifiers:
    """A plugin registering one classifier with the given keywords, counting its hook's calls."""

    def __init__(self, name: str, **keywords: object) -> None:
        self.name, self.keywords, self.calls = name, keywords, 0

    @hookimpl
    def register_classifiers(self, register):
        self.calls += 1
        register(self.name, lambda **kw: kw, **self.keywords)


def test_keywords_become_the_kinds_typed_record(inline):
    inline(Classifiers("typed-net", input_size=64, head="fc", min_size=8, channels=[1, 3]), "typed")
    entry = get_entry("classifier", "typed-net")
    assert entry.info == ClassifierInfo(input_size=64, head="fc", min_size=8, size_multiple=1, channels=(1, 3))
    assert entry.plugin == "typed"
    assert get_entry("classifier", "resnet18").info.head == "fc"  # the built-ins read the same way


@pytest.mark.parametrize("keywords, message", [
    ({"input_size": 32, "heads": "fc"}, "plugin 'bad' registers classifier 'bad-net' with unknown keyword 'heads'; "
                                         "a classifier takes input_size, head, min_size, size_multiple, channels"),
    ({"min_size": 0}, "plugin 'bad' registers classifier 'bad-net': min_size=0 must be a whole number >= 1"),
    ({"head": 3}, "plugin 'bad' registers classifier 'bad-net': head=3 must be a submodule name"),
])
def test_a_wrong_keyword_is_an_error_naming_the_plugin(inline, keywords, message):
    inline(Classifiers("bad-net", **keywords), "bad")
    with pytest.raises(RegistrationError) as caught:
        list_classifiers()
    assert str(caught.value).startswith(message)


def test_a_generator_must_say_how_it_is_conditioned(inline):
    class Generators:
        @hookimpl
        def register_generators(self, register):
            register("vague", lambda: None, min_images=2)

    inline(Generators(), "vague-plugin")
    with pytest.raises(RegistrationError, match="plugin 'vague-plugin' registers generator 'vague' without conditioning="):
        get_entry("generator", "ddpm")


def test_every_documented_keyword_is_a_field_and_every_field_is_documented():
    """hookspecs.py is the contract: each register_* docstring names exactly its record's fields."""
    for kind, spec in KINDS.items():
        doc = getattr(hookspecs, spec.hook).__doc__
        documented = set(re.findall(r"(\w+)=", doc.split("\n\n")[0]))
        assert documented == {f.name for f in dataclasses.fields(spec.info)}, kind


def test_tables_are_filled_once_per_plugin_manager_state(inline):
    first = Classifiers("counted-net")
    inline(first, "counted")
    for _ in range(3):
        assert "counted-net" in list_classifiers()
        get_entry("classifier", "counted-net")
    assert first.calls == 1
    second = Classifiers("second-net")
    inline(second, "second")  # a registration refills the tables at the next lookup
    assert {"counted-net", "second-net"} <= set(list_classifiers())
    assert first.calls == 2 and second.calls == 1
    get_plugin_manager().unregister(name="second")
    assert "second-net" not in list_classifiers()
    get_plugin_manager().register(second, name="second")  # the fixture unregisters it again


def test_old_names_find_the_entry_with_a_warning(inline, capsys):
    inline(Classifiers("new-name", aliases=("old_name",)), "renamed")
    capsys.readouterr()
    assert get_entry("classifier", "old_name").name == "new-name"
    assert capsys.readouterr().err == ("synthmed: warning: classifier 'old_name' is deprecated; use 'new-name' "
                                       "(the old name goes in the next release)\n")
    assert get_entry("classifier", "old_name", warn_alias=False).name == "new-name"
    assert capsys.readouterr().err == ""
    assert "old_name" not in list_classifiers() and "new-name" in list_classifiers()
    assert get_entry("classifier", "vit_b_16", warn_alias=False).name == "vit-b-16"
    assert get_entry("classifier", "efficientnet_v2_s", warn_alias=False).name == "efficientnet-v2-s"


def test_an_alias_may_not_take_a_registered_name(inline):
    inline(Classifiers("thief", aliases=("resnet18",)), "thief-plugin")
    with pytest.raises(RegistrationError, match="classifier 'resnet18' registered twice"):
        list_classifiers()


def test_names_are_lowercase_words_joined_by_dashes():
    for kind in KINDS:
        for name in list_entries(kind):
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), f"{kind} {name!r}"


def test_plugins_command_shows_the_new_classifier_names(run):
    import json

    record = json.loads(run("plugins", "--json").out)
    builtin = {p["name"]: p for p in record["plugins"]}["synthmed.default_plugins.classifiers"]
    assert {"vit-b-16", "efficientnet-v2-s"} <= set(builtin["registers"]["classifier"])
    assert not {"vit_b_16", "efficientnet_v2_s"} & set(builtin["registers"]["classifier"])
