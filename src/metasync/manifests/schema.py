"""Turn pydantic validation errors into problems a person can act on (file:line key path)."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from metasync.errors import Problem, Severity, did_you_mean
from metasync.model.paths import Locator, display_path

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "list_type": "a list",
}


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _looks_like(kind: str, text: str) -> bool:
    """Would ``text`` be the expected value without its quotes?"""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    expected: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,)}
    wanted = expected.get(kind.split("_", maxsplit=1)[0])
    return (
        wanted is not None
        and isinstance(loaded, wanted)
        and not (kind.startswith("int") and isinstance(loaded, bool))
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def model_at(model: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that holds the last key of ``path`` (None when the path leaves models)."""
    current: Any = model
    for part in path:
        current = _step(current, part)
        if current is None:
            return None
    return _first_model(current)


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _first_model(arg)
            if found is not None:
                return found
    return None


def _step(annotation: Any, part: str | int) -> Any:
    model = _first_model(annotation)
    if model is not None and isinstance(part, str):
        for name, field in model.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is type(None):
                continue
            stepped = _step(arg, part)
            if stepped is not None:
                return stepped
        return None
    args = typing.get_args(annotation)
    if origin is list and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def problems_from(
    exc: ValidationError,
    model: type[BaseModel],
    data: Any,
    locator: Locator,
    prefix: str = "",
    *,
    unknown: Severity = "error",
) -> list[Problem]:
    """One problem per pydantic error, placed at its line and key path. ``unknown`` is how an
    unknown field counts: a warning where the server takes and drops it (Conductor objects)."""
    problems = []
    for error in exc.errors(include_url=False):
        # a tagged union's member ("<definition>") is no key of the document
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("<")))
        key = str(loc[-1]) if loc else "(document)"
        display = display_path(data, loc, prefix)
        kind = error["type"]
        value = error.get("input")
        hint: str | None = None
        severity: Severity = "error"
        if kind == "extra_forbidden":
            holder = model_at(model, loc[:-1])
            fields = [f.alias or n for n, f in holder.model_fields.items()] if holder else []
            ignored = (
                ": the server ignores it, and so does the plan" if unknown == "warning" else ""
            )
            message = f"unknown field {key!r}{ignored}" + did_you_mean(key, fields)
            hint = "Fix the name or remove the field (field names are Conductor's, case-sensitive)."
            severity = unknown
        elif kind == "missing":
            message = f"missing required field {key!r}"
            hint = f"Add `{key}:`."
        elif kind == "literal_error":
            expected = error.get("ctx", {}).get("expected", "")
            choices = [c.strip().strip("'") for c in expected.replace(" or ", ", ").split(",")]
            message = f"{_short(value)} is not a valid {key}" + (
                did_you_mean(str(value), choices) if isinstance(value, str) else ""
            )
            hint = f"Use one of: {', '.join(choices)} (case-sensitive)."
        elif kind in _EXPECTED:
            message = f"wrong type for {key}: expected {_EXPECTED[kind]}, got {_yaml_type(value)} {_short(value)}"
            if isinstance(value, str) and _looks_like(kind, value):
                hint = "Remove the quotes around the value."
            elif value is None:
                hint = "Give it a value, or remove the key to leave it unset."
        elif kind == "value_error":
            message = error["msg"].removeprefix("Value error, ")
        elif kind == "string_too_short":
            message = f"{key} must not be empty"
        elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            message = f"{key} {error['msg'].removeprefix('Input should be ')}, got {_short(value)}"
        else:
            message = f"{key}: {error['msg']}"
        rule = "unknown-field" if severity == "warning" else None
        problems.append(Problem(message, locator.locate(loc, display), hint, severity, rule))
    return problems
