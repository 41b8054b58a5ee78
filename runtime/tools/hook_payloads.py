"""Checking a hook payload typed into the inspector (or given to ``wfkit resume``) before
it reaches the run.

The inspector loads no build, so it cannot call a typed hook's pydantic model. A hook
whose metadata carries the model's JSON Schema under ``"schema"``
(``Approval.create(token, metadata={"schema": Approval.model_json_schema()})``) is
checked against it here, because a payload the model rejects would fail the run
(the workflow validates what it receives). Any other hook takes any JSON.

The checker covers the JSON Schema that pydantic emits for models: ``type``,
``properties``, ``required``, ``additionalProperties``, ``items``, ``prefixItems``,
``enum``, ``const``, ``anyOf``/``oneOf``/``allOf``, local ``$ref`` to ``$defs``, and the
length and range bounds. Keywords it does not know are ignored (lenient, never a false
refusal). Alternative rejected: the ``jsonschema`` package, a new dependency of the web
extra for what pydantic's output needs in a hundred lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from wfkit.runtime.serialization import deserialize

JsonSchema = Mapping[str, object]

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


@dataclass(frozen=True)
class PayloadCheck:
    """A typed-in payload: the value when it is acceptable, else the reasons it is not."""

    value: object = None
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def schema_of(metadata: object) -> JsonSchema | None:
    """The JSON Schema a hook's stored metadata carries under ``"schema"``, if any."""
    try:
        value = deserialize(metadata)
    except Exception:  # metadata naming a class of an unloaded build: no schema to use
        value = metadata
    if isinstance(value, Mapping):
        schema = value.get("schema")
        if isinstance(schema, Mapping) and any(
            key in schema for key in ("type", "properties", "$ref", "anyOf", "enum", "const")
        ):
            return schema
    return None


def check_payload(text: str, schema: JsonSchema | None) -> PayloadCheck:
    """Parse ``text`` as JSON and check it against ``schema`` (when given)."""
    if not text.strip():
        return PayloadCheck(problems=("the payload is empty; type a JSON value, e.g. {} or null",))
    try:
        value = json.loads(text)
    except ValueError as exc:
        return PayloadCheck(problems=(f"the payload is not JSON: {exc}",))
    if schema is None:
        return PayloadCheck(value)
    problems: list[str] = []
    _check(value, schema, "$", schema, problems)
    return PayloadCheck(value, tuple(problems))


def _resolve(schema: JsonSchema, root: JsonSchema) -> JsonSchema:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: object = root
    for part in ref[2:].split("/"):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _type_ok(value: object, kind: str) -> bool:
    if kind in ("number", "integer") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES.get(kind, (object,)))


def _check(value: object, schema: JsonSchema, path: str, root: JsonSchema, out: list[str]) -> None:
    schema = _resolve(schema, root)
    kinds = schema.get("type")
    if isinstance(kinds, str):
        kinds = [kinds]
    if isinstance(kinds, list) and not any(_type_ok(value, str(k)) for k in kinds):
        out.append(f"{path}: expected {' or '.join(map(str, kinds))}, got {_json_type(value)}")
        return
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: must be {json.dumps(schema['const'])}")
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        out.append(f"{path}: must be one of {', '.join(json.dumps(e) for e in enum)}")
    _check_alternatives(value, schema, path, root, out)
    if isinstance(value, dict):
        _check_object(value, schema, path, root, out)
    elif isinstance(value, list):
        _check_array(value, schema, path, root, out)
    elif isinstance(value, str):
        _check_string(value, schema, path, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(value, schema, path, out)


def _check_alternatives(
    value: object, schema: JsonSchema, path: str, root: JsonSchema, out: list[str]
) -> None:
    for sub in _list(schema, "allOf"):
        if isinstance(sub, Mapping):
            _check(value, sub, path, root, out)
    for key in ("anyOf", "oneOf"):
        options = [s for s in _list(schema, key) if isinstance(s, Mapping)]
        if not options:
            continue
        reasons: list[str] = []
        for option in options:
            trial: list[str] = []
            _check(value, option, path, root, trial)
            if not trial:
                break
            reasons += trial
        else:
            out.append(f"{path}: matches none of the allowed forms ({'; '.join(reasons)})")


def _check_object(
    value: dict[str, object], schema: JsonSchema, path: str, root: JsonSchema, out: list[str]
) -> None:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    for name in _list(schema, "required"):
        if name not in value:
            out.append(f"{path}: missing required field {json.dumps(name)}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        where = (
            f"{path}.{name}"
            if re.fullmatch(r"[A-Za-z_]\w*", name)
            else f"{path}[{json.dumps(name)}]"
        )
        if name in properties and isinstance(properties[name], Mapping):
            _check(item, properties[name], where, root, out)
        elif extra is False:
            out.append(f"{path}: unexpected field {json.dumps(name)}")
        elif isinstance(extra, Mapping):
            _check(item, extra, where, root, out)


def _check_array(
    value: list[object], schema: JsonSchema, path: str, root: JsonSchema, out: list[str]
) -> None:
    prefix = [s for s in _list(schema, "prefixItems") if isinstance(s, Mapping)]
    items = schema.get("items")
    for index, item in enumerate(value):
        if index < len(prefix):
            _check(item, prefix[index], f"{path}[{index}]", root, out)
        elif isinstance(items, Mapping):
            _check(item, items, f"{path}[{index}]", root, out)
    _bounds(len(value), schema, "minItems", "maxItems", f"{path}: list length", out)


def _check_string(value: str, schema: JsonSchema, path: str, out: list[str]) -> None:
    _bounds(len(value), schema, "minLength", "maxLength", f"{path}: text length", out)
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and re.search(pattern, value) is None:
        out.append(f"{path}: must match {pattern}")


def _check_number(value: float, schema: JsonSchema, path: str, out: list[str]) -> None:
    _bounds(value, schema, "minimum", "maximum", path, out)
    low, high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(low, int | float) and value <= low:
        out.append(f"{path}: must be more than {low}")
    if isinstance(high, int | float) and value >= high:
        out.append(f"{path}: must be less than {high}")


def _bounds(
    size: float, schema: JsonSchema, low_key: str, high_key: str, what: str, out: list[str]
) -> None:
    low, high = schema.get(low_key), schema.get(high_key)
    if isinstance(low, int | float) and size < low:
        out.append(f"{what} must be at least {low}")
    if isinstance(high, int | float) and size > high:
        out.append(f"{what} must be at most {high}")


def _list(schema: JsonSchema, key: str) -> list[object]:
    """A keyword whose value should be a list (``required``, ``anyOf``...); [] if it is not."""
    value = schema.get(key)
    return value if isinstance(value, list) else []


def _json_type(value: object) -> str:
    """The JSON type name of a parsed value (``integer`` for whole numbers)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    for name in ("number", "string", "object", "array", "null"):
        if _type_ok(value, name):
            return name
    return type(value).__name__
