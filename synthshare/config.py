"""Config checking: JSON-Schema validation with one-line messages, and defaults.

``jsonschema`` reports errors as multi-line text with the whole sub-schema; a user needs
one line with the key, the value and what is allowed. :func:`check_config` finds the
most relevant error and says exactly that, then fills the schema's defaults.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Callable, Iterable

import jsonschema
import yaml

from synthshare.errors import InputError


_BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def load_schema(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def check_config(config: dict, schema: dict, source: str | Callable[[Iterable[Any]], str] = "config") -> dict:
    """Validate ``config`` against ``schema``; return a copy with defaults filled in.

    Args:
        source: the file named in messages, or a function of the offending key's path
            (a sequence of keys and list indices) that names the file that set it.

    Raises:
        InputError: one line: ``<source>: <key path> = <value>: <what is allowed>``.
            Numbers must be finite (YAML's ``.nan`` and ``.inf`` are numbers to JSON
            Schema, and NaN passes every bound because every comparison with it is false).
    """
    name = source if callable(source) else (lambda path: source)
    for path, value in _numbers(config, ()):
        if not math.isfinite(value):
            raise InputError(f"{name(path)}: {_key_path(path)} = {value!r}: must be a finite number")
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise InputError(f"{name(tuple(error.absolute_path))}: {describe_error(error)}")
    return fill_defaults(copy.deepcopy(config), schema)


def _numbers(node: Any, path: tuple) -> Iterable[tuple[tuple, float]]:
    """(key path, value) of every float in a nested config."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _numbers(value, path + (index,))
    elif isinstance(node, float):
        yield path, node


def describe_error(error: jsonschema.ValidationError) -> str:
    """One line naming the key, the value and the rule it breaks."""
    key = _key_path(error.absolute_path)
    value = error.instance
    schema = error.schema
    rule = error.validator
    if rule == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        where = f"{key}." if key != "(top level)" else ""
        return f"unknown key {where}{extra[0] if extra else '?'}; allowed keys here: {allowed}"
    if rule == "required":
        return f"{key}: {error.message}"
    if rule == "enum":
        return f"{key} = {value!r}: not allowed; expected one of {schema['enum']}"
    if rule == "oneOf":
        options = [_describe_type(s) for s in schema["oneOf"]]
        return f"{key} = {value!r}: expected {' or '.join(options)}"
    if rule == "type":
        return f"{key} = {value!r}: expected {_describe_type(schema)}"
    if rule in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        bounds = _BOUNDS
        parts = [f"{bounds[b]} {schema[b]}" for b in bounds if b in schema]
        return f"{key} = {value!r}: must be {' and '.join(parts)}"
    if rule == "pattern":
        return f"{key} = {value!r}: must match {schema['pattern']}"
    if rule == "uniqueItems":
        return f"{key} = {value!r}: values must be unique"
    if rule in {"minItems", "maxItems"}:
        return f"{key} = {value!r}: {error.message}"
    return f"{key} = {value!r}: {error.message.splitlines()[0]}"


def fill_defaults(config: dict, schema: dict) -> dict:
    """Set missing keys to their schema defaults, recursing into objects."""
    for name, sub in schema.get("properties", {}).items():
        if name not in config and "default" in sub:
            config[name] = copy.deepcopy(sub["default"])
        if isinstance(config.get(name), dict) and sub.get("type") == "object":
            fill_defaults(config[name], sub)
    return config


def _key_path(path: Any) -> str:
    parts = []
    for item in path:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _describe_type(schema: dict) -> str:
    kind = schema.get("type", "value")
    if "enum" in schema:
        return f"one of {schema['enum']}"
    if kind == "array":
        items = schema.get("items", {})
        return f"a list, each {_describe_type(items)}" if items else "a list"
    bounds = _BOUNDS
    parts = [f"{bounds[b]} {schema[b]}" for b in bounds if b in schema]
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{article} {kind}" + (f" {' and '.join(parts)}" if parts else "")
