"""One canonical form for both sides of a comparison (reference/conductor-api.md §2.7).

The server fills defaults, writes audit fields and emits empty collections; a manifest states what
its author cares about. Normalising both the same way makes them comparable without perpetual
diffs: server-managed fields are dropped, a field that equals its default (for the target flavour)
is dropped, an empty collection is the same as an absent one, and fields the target server does not
know are dropped and reported (the server would silently drop them, so they could never match).
Free-form maps (inputParameters, outputParameters, variables, ...) are data: kept as they are,
nulls and empty values included.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metasync.model.conductor import ConductorModel, SubWorkflowParams, WorkflowTask
from metasync.model.flavour import Flavour, flavour_of
from metasync.model.kinds import DEFAULTS, FREE_FORM, KINDS, NESTED

__all__ = ["Flavour", "flavour_of"]  # re-exported: the flavour is the model's (model/flavour.py)

# the defaults the server fills in, the fields holding nested models and the free-form ones are
# each kind's (model/kinds/); fields only conductor-oss knows are filled for that flavour only
_DEFAULTS = DEFAULTS
_FREE_FORM = FREE_FORM
_NESTED = NESTED

# written by the server (or by metasync as its mark) in any model: never part of a comparison
SERVER_MANAGED = frozenset(
    {"createTime", "updateTime", "createdBy", "updatedBy", "ownerApp", "accessPolicy"}
)


@dataclass(frozen=True, slots=True)
class Unknown:
    """A field the target server does not know: it would drop it on write."""

    path: tuple[str | int, ...]  # raw path of the object that holds the field
    field: str


def normalize(kind: str, spec: Mapping[str, Any], flavour: Flavour,
              unknown: list[Unknown] | None = None, *, fill: bool = True,
              keep_defaults: bool = False) -> dict[str, Any]:  # fmt: skip
    """The canonical form of ``spec``.

    ``fill=True`` (for comparing): every scalar default the server fills in is present, so an
    explicit default and an omitted one are the same, and a diff reads ``true -> false``.
    ``fill=False`` (for exporting): only what differs from the defaults; with ``keep_defaults``
    (for showing what is created): what ``spec`` states, defaults it states included.
    """
    ctx = _Context(flavour, unknown if unknown is not None else [], fill, keep_defaults)
    return _model(KINDS[kind].model, spec, ctx, ())


@dataclass(frozen=True, slots=True)
class _Context:
    flavour: Flavour
    unknown: list[Unknown]
    fill: bool
    keep_defaults: bool = False


@functools.cache
def _shape(model: type[ConductorModel], oss: bool) -> _Shape:
    """What ``_model`` asks of ``model`` for every key of every object, worked out once."""
    # a field no flavour's model has is dropped by the server (unknown properties are ignored):
    # never part of a comparison (validate warns about it in a manifest); nor what it writes
    fields = frozenset(model.model_fields) - SERVER_MANAGED - frozenset(model.SERVER_MANAGED)
    defaults = _DEFAULTS.get(model, {})
    return _Shape(
        fields,
        frozenset() if oss else fields & frozenset(model.OSS_ONLY),
        defaults,
        tuple((k, v) for k, v in defaults.items() if oss or k not in model.OSS_ONLY),
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    fields: frozenset[str]  # those compared
    unknown: frozenset[str]  # those this flavour does not have
    defaults: Mapping[str, Any]
    fill: tuple[tuple[str, Any], ...]  # the defaults this flavour fills in


def _model(model: type[ConductorModel], data: Mapping[str, Any], ctx: _Context,
           path: tuple[str | int, ...]) -> dict[str, Any]:  # fmt: skip
    shape = _shape(model, ctx.flavour == "oss")
    fields, defaults = shape.fields, shape.defaults
    drop_defaults = not ctx.fill and not ctx.keep_defaults
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None or key not in fields:
            continue
        if key in shape.unknown:
            ctx.unknown.append(Unknown(path, key))
            continue
        if drop_defaults and key in defaults and value == defaults[key]:
            continue
        if key in _FREE_FORM:
            if value not in ({}, []):  # the server emits {} for an absent map
                out[key] = value
            continue
        nested = _NESTED.get(key)
        canonical = value if nested is None else _value(nested, value, ctx, (*path, key))
        if canonical not in ([], {}):
            out[key] = canonical
    if model is SubWorkflowParams and isinstance(data.get("workflowDefinition"), Mapping):
        # the server names the task after its inline definition: its name, its version (or 1)
        inline = data["workflowDefinition"]
        out["name"] = inline.get("name") or out.get("name")
        version = inline.get("version")
        out["version"] = 1 if version is None else version
        stated = ctx.keep_defaults and "version" in inline
        if not ctx.fill and out["version"] == 1 and not stated:
            del out["version"]
    if ctx.fill:
        for key, default in shape.fill:
            if key not in out:
                out[key] = default
    return out


def _value(nested: type[ConductorModel] | None, value: Any, ctx: _Context,
           path: tuple[str | int, ...]) -> Any:  # fmt: skip
    if nested is None:
        return value
    if isinstance(value, Mapping):
        if path and path[-1] == "decisionCases":  # case -> a list of tasks
            return {
                case: _value(nested, tasks, ctx, (*path, case)) for case, tasks in value.items()
            }
        return _model(nested, value, ctx, path)
    if isinstance(value, list):
        return [_value(nested, item, ctx, (*path, i)) for i, item in enumerate(value)]
    return value


def ordered(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with the keys of each model in the model's order (name, description, version, ...,
    tasks), free-form maps as they are: how an exported manifest reads."""
    return _ordered(KINDS[kind].model, spec)


def _ordered(model: type[ConductorModel], data: Mapping[str, Any]) -> dict[str, Any]:
    rank = {name: i for i, name in enumerate(model.model_fields)}
    out: dict[str, Any] = {}
    for key in sorted(data, key=lambda k: (rank.get(k, len(rank)), k)):
        value = data[key]
        nested = _NESTED.get(key) if key not in _FREE_FORM else None
        if key == "decisionCases" and isinstance(value, Mapping):  # case -> a list of tasks
            out[key] = {case: _ordered_value(WorkflowTask, tasks) for case, tasks in value.items()}
        else:
            out[key] = _ordered_value(nested, value) if nested is not None else value
    return out


def _ordered_value(nested: type[ConductorModel], value: Any) -> Any:
    if isinstance(value, Mapping):
        return _ordered(nested, value)
    if isinstance(value, list):
        return [_ordered_value(nested, item) for item in value]
    return value
