"""JSON Schemas of metasync's files, for editors (`metasync schema`): built from the models that
validate them, so they never say something else than metasync does.

A schema must never refuse what metasync accepts; it only helps editors complete, describe and
check. So, in manifests and overlays:

* a Conductor object takes fields it does not declare (metasync warns about them, the server drops
  them): ``additionalProperties`` stays open, and completion offers the declared ones;
* any value may be a whole ``((vars.NAME))`` or ``((secrets.NAME))`` placeholder, whatever the
  field's type (the variable's value takes its place, with its type);
* fields the server writes itself are left out of completion (metasync ignores them there);
* the 3.15 flavour leaves out what only conductor-oss knows (fields, kinds, actions, task types):
  an editor then completes only what that server reads. The default, ``oss``, is the superset.

The envelope (apiVersion, kind, metadata), ``environment.yaml`` and ``metasync.yaml`` are closed:
metasync refuses unknown keys there too.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from metasync.manifests.environment import EnvironmentConfig, ProjectSettings
from metasync.manifests.loader import API_VERSION
from metasync.model.conductor import Action, ConductorModel, WorkflowTask
from metasync.model.flavour import FLAVOUR_NAMES, Flavour, task_types
from metasync.model.kinds import KINDS
from metasync.model.workflow_test import TEST_KIND, WorkflowTestSpec

SchemaKind = Literal["manifest", "environment", "overlay", "project"]
SCHEMA_KINDS: tuple[SchemaKind, ...] = ("manifest", "environment", "overlay", "project")
#: the flavour of the published schemas: conductor-oss's fields are a superset of 3.15's
DEFAULT_FLAVOUR: Flavour = "oss"
#: draft-07: what editors' YAML support implements in full (VS Code's YAML extension, IntelliJ)
DIALECT = "http://json-schema.org/draft-07/schema#"
_REF = "#/definitions/{model}"

#: which files each schema is for (the `# yaml-language-server: $schema=` comment's file)
FILES: dict[SchemaKind, str] = {
    "manifest": "manifests/**/*.yaml",
    "environment": "environments/<env>/environment.yaml",
    "overlay": "environments/<env>/overlays/*.yaml",
    "project": "metasync.yaml",
}

#: a whole-value placeholder, as manifests and overlays may hold in place of any value
PLACEHOLDER_PATTERN = r"^\s*\(\(\s*(vars|secrets)\.[A-Za-z_][A-Za-z0-9_.-]*\s*\)\)\s*$"
_PLACEHOLDER_REF = {"$ref": "#/definitions/Placeholder"}
_PLACEHOLDER = {
    "type": "string",
    "pattern": PLACEHOLDER_PATTERN,
    "description": "((vars.NAME)) or ((secrets.NAME)): the environment's value, with its type",
}
_NULL = {"type": "null"}

Json = dict[str, Any]


def file_name(kind: SchemaKind, flavour: Flavour = DEFAULT_FLAVOUR) -> str:
    """``manifest.schema.json``; another flavour than the default says so
    (``manifest-3.15.schema.json``)."""
    return f"{kind}.schema.json" if flavour == DEFAULT_FLAVOUR else f"{kind}-{flavour}.schema.json"


def dumps(schema: Json) -> str:
    """The text of a schema file (stable: the published files are compared with it)."""
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def json_schema(kind: SchemaKind, flavour: Flavour = DEFAULT_FLAVOUR) -> Json:
    builders: dict[SchemaKind, Callable[[Flavour], Json]] = {
        "manifest": _manifest,
        "environment": lambda _: _closed_file(
            EnvironmentConfig,
            "environment.yaml",
            "One environment: its server, variables, secrets, promotion, policy, backups and "
            "webhooks. Values may be ((env.NAME)) placeholders.",
        ),
        "overlay": _overlay,
        "project": lambda _: _closed_file(
            ProjectSettings, "metasync.yaml", "The project's settings, beside manifests/."
        ),
    }
    return builders[kind](flavour)


# -- the files ------------------------------------------------------------------------------------


def _kinds(flavour: Flavour) -> list[str]:
    return [k.name for k in KINDS.values() if flavour in k.flavours]


def _header(title: str, description: str) -> Json:
    return {"$schema": DIALECT, "title": title, "description": description}


def _manifest(flavour: Flavour) -> Json:
    kinds = _kinds(flavour)
    models: dict[str, type[BaseModel]] = {k: KINDS[k].model for k in kinds}
    models[TEST_KIND] = WorkflowTestSpec
    defs, refs = _spec_defs(models, flavour)
    defs["Placeholder"] = dict(_PLACEHOLDER)
    # metadata.name names the object: spec.name may be left out
    for kind in models:
        spec = defs[refs[kind]]
        required = [r for r in spec.pop("required", []) if r != "name"]
        if required:
            spec["required"] = required
    return {
        **_header(
            f"metasync manifest ({FLAVOUR_NAMES[flavour]})",
            "One document of a file under manifests/: apiVersion, kind, metadata and spec, the "
            "Conductor object with Conductor's field names.",
        ),
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"enum": [*kinds, TEST_KIND]},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "spec": {"type": "object"},
        },
        "allOf": [
            _when_kind(kind, {"spec": {"$ref": _REF.format(model=refs[kind])}}) for kind in models
        ],
        "definitions": defs,
    }


def _overlay(flavour: Flavour) -> Json:
    kinds = _kinds(flavour)
    defs, refs = _spec_defs({k: KINDS[k].model for k in kinds}, flavour)
    defs["Placeholder"] = dict(_PLACEHOLDER)
    for name, definition in defs.items():
        if name != "Placeholder":
            _partial(definition)
    task = defs.get(WorkflowTask.__name__)
    if task is not None:
        task["properties"].update(
            {
                "$patch": {"const": "delete", "description": "remove this task"},
                "$after": {"type": "string", "description": "a new task's place: after REF"},
                "$before": {"type": "string", "description": "a new task's place: before REF"},
            }
        )
    operation = {
        "type": "object",
        "required": ["op", "path"],
        "properties": {
            "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
            "path": {"type": "string"},
            "from": {"type": "string"},
            "value": {},
        },
    }
    return {
        **_header(
            f"metasync overlay ({FLAVOUR_NAMES[flavour]})",
            "One document of a file under environments/<env>/overlays/: the resource it changes "
            "(kind, metadata), a strategic merge (patch; null removes a key) and RFC 6902 "
            "operations applied after it (jsonPatch).",
        ),
        "type": "object",
        "required": ["kind", "metadata"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"type": "string", "default": API_VERSION},
            "kind": {"enum": kinds},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "version": {"type": "integer", "description": "one workflow version only"},
                },
            },
            "patch": {"type": "object"},
            "jsonPatch": {"type": "array", "items": _placeholder_or(operation)},
        },
        "allOf": [
            _when_kind(kind, {"patch": {"$ref": _REF.format(model=refs[kind])}}) for kind in kinds
        ],
        "definitions": defs,
    }


def _closed_file(model: type[BaseModel], file: str, description: str) -> Json:
    """A file metasync reads whole and strictly: every unknown key is an error there too."""
    schema = model.model_json_schema(ref_template=_REF)
    if "$defs" in schema:
        schema["definitions"] = schema.pop("$defs")
    _tidy(schema)
    schema.pop("title", None)
    return {**_header(f"metasync {file}", description), **schema}


def _when_kind(kind: str, then: Json) -> Json:
    return {
        "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
        "then": {"properties": then},
    }


# -- the Conductor objects -------------------------------------------------------------------------


def _spec_defs(models: dict[str, type[BaseModel]], flavour: Flavour) -> tuple[Json, dict[str, str]]:
    """The definitions of every model (and the ones they hold), edited for editors; and the name of
    each kind's own definition."""
    keys, schema = models_json_schema(
        [(m, "validation") for m in models.values()], ref_template=_REF
    )
    defs: Json = schema["$defs"]
    refs = {
        kind: keys[(model, "validation")]["$ref"].rsplit("/", 1)[-1]
        for kind, model in models.items()
    }
    classes = {c.__name__: c for m in models.values() for c in _models_in(m)}
    for name, definition in defs.items():
        model = classes.get(name)
        if model is not None:
            _for_editors(definition, model, flavour)
    _tidy(defs)
    for definition in defs.values():
        _placeholders(definition)
    return defs, refs


def _models_in(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> Iterator[type[BaseModel]]:  # fmt: skip
    seen = set() if seen is None else seen
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        for held in _classes(field.annotation):
            yield from _models_in(held, seen)


def _classes(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _classes(typing.get_args(annotation)[0])
        return
    if origin in (typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            yield from _classes(arg)


def _for_editors(definition: Json, model: type[BaseModel], flavour: Flavour) -> None:
    """Open to undeclared fields; without the server's own fields and, for 3.15, without
    conductor-oss's."""
    definition.pop("additionalProperties", None)
    hidden: set[str] = set()
    if issubclass(model, ConductorModel):
        hidden |= model.SERVER_MANAGED
        if flavour == "3.15":
            hidden |= model.OSS_ONLY
    properties = definition.get("properties", {})
    for name in hidden:
        properties.pop(name, None)
    if issubclass(model, ConductorModel):
        for name in model.OSS_ONLY & properties.keys():
            properties[name]["description"] = "conductor-oss only (Conductor 3.15 drops it)"
    if "required" in definition:
        definition["required"] = [r for r in definition["required"] if r not in hidden]
    if model is Action and flavour == "3.15":
        # the actions named like conductor-oss's fields are conductor-oss's (3.15 cannot read them)
        action = properties["action"]
        action["enum"] = [a for a in action["enum"] if a not in Action.OSS_ONLY]
    if model is WorkflowTask:
        # any other type runs as a worker (SIMPLE) task: the known ones are suggestions
        described = {k: v for k, v in properties["type"].items() if k != "anyOf"}
        properties["type"] = {
            **described,
            "anyOf": [{"enum": sorted(task_types(flavour))}, {"type": "string"}],
        }


def _tidy(node: Any) -> None:
    """No generated titles (the key says it), no null defaults, oneOf as anyOf (a placeholder may
    match two branches)."""
    if isinstance(node, list):
        for item in node:
            _tidy(item)
        return
    if not isinstance(node, dict):
        return
    properties = node.get("properties")
    if isinstance(properties, dict):
        for value in properties.values():
            if isinstance(value, dict):
                value.pop("title", None)
    if "default" in node and node["default"] is None:
        del node["default"]
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf")
    for value in node.values():
        _tidy(value)


# -- placeholders and overlays ---------------------------------------------------------------------


def _placeholders(node: Json) -> None:
    """Every value held by ``node`` (its properties, items, map values) may be a placeholder."""
    for key in ("anyOf", "allOf"):
        for member in node.get(key, []):
            _placeholders(member)
    properties = node.get("properties")
    if isinstance(properties, dict):
        for name, value in properties.items():
            properties[name] = _placeholder_or(value)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _placeholder_or(node[key])


def _placeholder_or(node: Json) -> Json:
    _placeholders(node)
    if _takes_any_string(node):
        return node
    if "anyOf" in node:
        node["anyOf"].append(dict(_PLACEHOLDER_REF))
        return node
    described: Json = {k: node.pop(k) for k in ("description", "default") if k in node}
    return {**described, "anyOf": [node, dict(_PLACEHOLDER_REF)]}


def _takes_any_string(node: Json) -> bool:
    if not any(k in node for k in ("type", "$ref", "enum", "const", "anyOf", "allOf")):
        return True  # any value at all
    if node.get("type") == "string":
        return not any(k in node for k in ("enum", "const", "pattern", "format"))
    return any(_takes_any_string(m) for m in node.get("anyOf", []))


def _partial(definition: Json) -> None:
    """An overlay's patch: every field optional, and null to remove it."""
    definition.pop("required", None)
    for name, value in definition.get("properties", {}).items():
        definition["properties"][name] = _or_null(value)


def _or_null(node: Json) -> Json:
    if not any(k in node for k in ("type", "$ref", "enum", "const", "anyOf")):
        return node
    if "anyOf" in node:
        if _NULL not in node["anyOf"]:
            node["anyOf"].append(dict(_NULL))
        return node
    described: Json = {k: node.pop(k) for k in ("description", "default") if k in node}
    return {**described, "anyOf": [node, dict(_NULL)]}
