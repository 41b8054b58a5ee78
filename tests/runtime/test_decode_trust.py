"""Decoding never imports a module a payload names, nor builds a class outside the project,
the registered classes and the standard list (issue 10, item 2).

The "attacker" modules live in ``tmp_path``, outside the project root (this repository),
as an installed library or an unrelated module on ``sys.path`` would.
"""

from __future__ import annotations

import dataclasses
import enum
import http
import importlib
import json
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from wfkit.runtime.errors import FatalError, SerializationError, StepError
from wfkit.runtime.serialization import (
    TAG,
    _classes,
    deserialize,
    deserialize_call,
    register_type,
    serialize,
    serialize_call,
)
from wfkit.runtime.serialization._common import class_path

SIDE_EFFECT_MODULE = "wfkit_test_gadget_on_import"
LIBRARY_MODULE = "wfkit_test_gadget_library"


@pytest.fixture(autouse=True)
def fresh_registrations(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_classes, "_registered", {})
    _classes.forget_resolved_classes()
    yield
    _classes.forget_resolved_classes()


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A module whose import writes ``marker``; it is on sys.path, never imported."""
    written = tmp_path / "imported.txt"
    (tmp_path / f"{SIDE_EFFECT_MODULE}.py").write_text(
        f"open({str(written)!r}, 'w').write('import ran')\n"
        "import dataclasses, enum\n"
        "@dataclasses.dataclass\nclass Gadget:\n    x: int = 0\n"
        "class Kind(enum.Enum):\n    A = 1\n"
        "class Boom(Exception):\n    pass\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield written
    sys.modules.pop(SIDE_EFFECT_MODULE, None)


@pytest.fixture
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """An imported module outside the project: a dataclass whose ``__post_init__`` and an
    exception whose ``__init__`` record that they ran."""
    (tmp_path / f"{LIBRARY_MODULE}.py").write_text(
        "import dataclasses\nRAN = []\n"
        "@dataclasses.dataclass\nclass Gadget:\n    command: str = ''\n"
        "    def __post_init__(self):\n        RAN.append(self.command)\n"
        "class LibraryError(Exception):\n"
        "    def __init__(self, *args):\n        RAN.append(args)\n        super().__init__(*args)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(LIBRARY_MODULE)
    yield module
    sys.modules.pop(LIBRARY_MODULE, None)


# --- nothing is imported ------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {TAG: "dc", "cls": f"{SIDE_EFFECT_MODULE}:Gadget", "v": {"x": 1}},
        {TAG: "enum", "cls": f"{SIDE_EFFECT_MODULE}:Kind", "v": 1},
        {TAG: "model", "cls": f"{SIDE_EFFECT_MODULE}:Gadget", "v": {}},
        {TAG: "ntuple", "cls": f"{SIDE_EFFECT_MODULE}:Gadget", "v": []},
        {TAG: "obj", "cls": f"{SIDE_EFFECT_MODULE}:Gadget", "v": {}},
    ],
    ids=lambda p: p[TAG],
)
def test_a_payload_naming_a_module_never_imports_it(payload: Any, marker: Path) -> None:
    with pytest.raises(SerializationError) as caught:
        deserialize({"items": [1, payload]})
    assert not marker.exists()
    assert SIDE_EFFECT_MODULE not in sys.modules
    assert caught.value.type_name == f"{SIDE_EFFECT_MODULE}:{payload['cls'].split(':')[1]}"
    assert caught.value.path == 'value["items"][1]'
    assert str(caught.value).startswith(
        f'cannot deserialize {payload["cls"]} at value["items"][1]: not a class of the project'
    )
    assert "\n" not in str(caught.value)


def test_an_exception_naming_a_module_reads_back_as_step_error_without_importing(
    marker: Path,
) -> None:
    payload = {
        TAG: "exc",
        "cls": f"{SIDE_EFFECT_MODULE}:Boom",
        "type": f"{SIDE_EFFECT_MODULE}.Boom",
        "msg": "boom",
        "args": ["boom"],
        "attrs": {},
    }
    error = deserialize(payload)
    assert type(error) is StepError
    assert (error.type_name, error.message) == (f"{SIDE_EFFECT_MODULE}.Boom", "boom")
    assert not marker.exists() and SIDE_EFFECT_MODULE not in sys.modules


# --- nothing outside the project is built --------------------------------------------------


def test_a_dataclass_outside_the_project_is_refused_before_post_init(library: Any) -> None:
    crafted = {TAG: "dc", "cls": f"{LIBRARY_MODULE}:Gadget", "v": {"command": "rm -rf /"}}
    data = {"args": [{"items": [crafted]}], "kwargs": {}, "closure": None, "this": None}
    with pytest.raises(SerializationError) as caught:
        deserialize_call(data)
    assert library.RAN == []
    assert caught.value.path == 'args[0]["items"][0]'
    assert f"{LIBRARY_MODULE}:Gadget" in str(caught.value)


def test_the_error_path_reads_fields_keys_and_items(library: Any) -> None:
    crafted = {TAG: "dc", "cls": f"{LIBRARY_MODULE}:Gadget", "v": {}}
    holder = serialize([ProjectThing("outer")])
    holder[0]["v"]["name"] = {TAG: "dict", "v": [[1, {TAG: "tuple", "v": ["a", crafted]}]]}
    with pytest.raises(SerializationError) as caught:
        deserialize(holder, path="result")
    assert caught.value.path == "result[0].name[1][1]"
    assert library.RAN == []


def test_an_exception_outside_the_project_is_not_constructed(library: Any) -> None:
    stored = serialize(library.LibraryError("payload"))
    library.RAN.clear()
    error = deserialize(stored)
    assert type(error) is StepError and error.type_name == f"{LIBRARY_MODULE}.LibraryError"
    assert library.RAN == []


def test_register_type_lets_a_library_class_through(library: Any) -> None:
    assert register_type(library.Gadget) is library.Gadget
    register_type(library.LibraryError)
    value = deserialize(serialize([library.Gadget("ls"), library.LibraryError("x")]))
    assert value[0] == library.Gadget("ls") and type(value[1]) is library.LibraryError


def test_register_type_refuses_what_no_name_could_find() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(ValueError, match="inside a function"):
        register_type(Local)
    with pytest.raises(TypeError, match="takes a class"):
        register_type(Local(1))  # type: ignore[arg-type]


# --- what is read back ----------------------------------------------------------------------


@dataclasses.dataclass
class ProjectThing:
    """A class of the project (this repository's tests), never registered."""

    name: str


class ProjectKind(enum.Enum):
    ONE = 1


def test_classes_of_the_project_need_no_registration() -> None:
    value = {"thing": ProjectThing("a"), "kind": ProjectKind.ONE}
    assert deserialize(serialize(value)) == value


def test_standard_types_builtin_exceptions_and_wfkit_errors_read_back() -> None:
    values = [
        http.HTTPStatus.NOT_FOUND,
        urllib.parse.urlparse("https://example.com/a?b=1"),
        json.JSONDecodeError("bad", "{x", 1),
        ValueError("v"),
        FatalError("f"),
    ]
    back = deserialize(serialize(values))
    assert [type(v) for v in back] == [type(v) for v in values]
    assert back[:2] == values[:2]


def test_every_standard_class_is_found_where_it_is_listed() -> None:
    for path in sorted(_classes.STANDARD_CLASSES):
        found = _classes._find(path, "client")
        assert found is not None and class_path(found) == path, path


def test_old_module_names_still_read_back() -> None:
    fatal = deserialize(
        {
            TAG: "exc",
            "cls": "runtime.errors:FatalError",
            "type": "runtime.errors.FatalError",
            "msg": "no",
            "args": ["no"],
            "attrs": {},
        }
    )
    assert type(fatal) is FatalError
    request = deserialize(
        {TAG: "dc", "cls": "runtime.webhooks:Request", "v": {"method": "POST", "url": "/x"}}
    )
    assert type(request).__name__ == "Request" and request.method == "POST"


@pytest.mark.parametrize(
    "cls",
    [
        "builtins:object",  # builtins: exceptions only
        "os:system",
        "subprocess:Popen",
        "wfkit.runtime.replay.calls:StepCall",  # a wfkit class not on the list
        "wfkit.runtime.loading.loader:LoadedBuild",
        f"{__name__}:ProjectThing.<locals>.X",
    ],
)
def test_everything_else_is_refused(cls: str) -> None:
    with pytest.raises(SerializationError, match="not a class of the project"):
        deserialize({TAG: "dc", "cls": cls, "v": {}})


def test_resolution_is_cached_on_the_hot_path() -> None:
    stored = serialize_call((ProjectThing("a"),), {})
    deserialize_call(stored)
    cached = len(_classes._resolved)
    for _ in range(100):
        deserialize_call(stored)
    assert len(_classes._resolved) == cached >= 1
