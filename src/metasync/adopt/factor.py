"""Several servers -> one base (manifests/) and a small overlay per environment. Pure.

The base holds what every environment shares: fields with the same value everywhere, tasks that
every environment has (by reference, in the same place). Each environment's overlay
(docs/environments.md) adds what is its own: a strategic merge patch by task reference, new tasks
placed with ``$after``/``$before``, tasks it lacks deleted. Every overlay is checked by applying it to the
base; where the merge cannot say it (a different task order, a new switch case), the overlay says
it with JSON Patch instead. With ``as_vars``, a value that differs only by environment becomes a
``((vars.NAME))`` in the base and a variable in each environment.yaml, and leaves the overlays.

A resource that only some environments have cannot be factored (an overlay cannot add a
resource): it is left out, with a warning.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import yaml

from metasync.adopt.changes import Unsaid, edits, field_edits, patch_for
from metasync.adopt.export import export, minimal, overlay_file
from metasync.conductor.live import Key, LiveState
from metasync.conductor.normalize import Flavour, normalize
from metasync.errors import Problem
from metasync.manifests.overlays import OverlayError, merge_resource
from metasync.manifests.yamlio import dump_documents
from metasync.model.fingerprint import canonical_json
from metasync.model.kinds import KINDS
from metasync.model.tasks import TASK_LISTS
from metasync.plan.select import Selector, selected

_SCALAR = (str, int, float, bool)


@dataclass
class Layout:
    files: dict[str, str]  # manifests/...: content
    overlays: dict[str, dict[str, str]]  # env -> overlay file name -> content
    vars: dict[str, dict[str, Any]]  # env -> variables to add
    warnings: list[Problem] = field(default_factory=list)


def factor(lives: Mapping[str, LiveState], selectors: Sequence[Selector] = (), *,
           as_vars: bool = False) -> Layout:  # fmt: skip
    envs = list(lives)
    specs = {
        env: {k: minimal(k[0], s, live.flavour) for k, s in live.objects.items()
              if selected(selectors, k[0], k[1], {})}
        for env, live in lives.items()
    }  # fmt: skip
    everywhere = set.intersection(*(set(s) for s in specs.values()))
    warnings = [
        Problem(
            f"{_title(key)} is on {', '.join(e for e in envs if key in specs[e])} only: not "
            "exported (an overlay cannot add a resource)",
            hint="Export those environments on their own, or create it everywhere first.",
            severity="warning",
            rule="export-not-everywhere",
        )
        for key in sorted(set().union(*(set(s) for s in specs.values())) - everywhere, key=_order)
    ]
    names = _VarNames()
    base: dict[Key, dict[str, Any]] = {}
    overlays: dict[str, dict[str, str]] = {env: {} for env in envs}
    variables: dict[str, dict[str, Any]] = {env: {} for env in envs}
    flavour = lives[envs[0]].flavour
    for key in sorted(everywhere, key=_order):
        kind = key[0]
        found = [specs[env][key] for env in envs]
        shared, values = _common(kind, found, as_vars, names, key)
        base[key] = shared
        for env, value_of in zip(envs, values, strict=True):
            variables[env].update(value_of)
        for i, env in enumerate(envs):
            resolved = _resolve(shared, values[i])
            body = overlay(kind, resolved, found[i], flavour)
            if body:
                name = overlay_file(key)
                overlays[env][name] = dump_documents([{
                    "kind": kind, "metadata": _target(key), **body,
                }])  # fmt: skip
    files = export(next(iter(lives.values())), selectors, specs=base).files
    return Layout(files, overlays, {e: v for e, v in variables.items() if v}, warnings)


# -- the common base --------------------------------------------------------------------------------


class _VarNames:
    """Variable names from where a value sits; one variable per distinct set of values."""

    def __init__(self) -> None:
        self.by_values: dict[str, str] = {}
        self.used: set[str] = set()

    def name_for(self, hint: str, values: Sequence[Any]) -> str:
        signature = canonical_json(list(values))
        if signature in self.by_values:
            return self.by_values[signature]
        stem = re.sub(r"[^A-Za-z0-9_]+", "_", hint).strip("_").lower() or "value"
        name, n = stem, 1
        while name in self.used:
            n += 1
            name = f"{stem}_{n}"
        self.used.add(name)
        self.by_values[signature] = name
        return name


@dataclass
class _Shared:
    """What factoring one resource collects: each environment's variables."""

    as_vars: bool
    names: _VarNames
    values: list[dict[str, Any]]


def _common(kind: str, found: Sequence[dict[str, Any]], as_vars: bool, names: _VarNames,
            key: Key) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    """The part of ``found`` (one spec per environment) they all share, and each environment's
    variables (with ``as_vars``)."""
    shared = _Shared(as_vars, names, [{} for _ in found])
    common = _common_map(found, shared, key[1], tasks=KINDS[kind].keyed_tasks)
    return common, shared.values


def _common_map(found: Sequence[Mapping[str, Any]], shared: _Shared, hint: str,
                tasks: bool = False) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for name in found[0]:
        if not all(name in f for f in found):
            continue
        items = [f[name] for f in found]
        if tasks and name == "tasks":
            out[name] = _common_tasks(items, shared, hint)
        elif all(canonical_json(i) == canonical_json(items[0]) for i in items):
            out[name] = copy.deepcopy(items[0])
        elif all(isinstance(i, Mapping) for i in items):
            sub = _common_map(items, shared, hint)  # a variable is named by its leaf key
            if sub:
                out[name] = sub
        elif shared.as_vars and all(isinstance(i, _SCALAR) for i in items):
            var = shared.names.name_for(f"{hint}_{name}", items)
            out[name] = f"((vars.{var}))"
            for i, item in enumerate(items):
                shared.values[i][var] = item
    return out


def _common_tasks(lists: Sequence[Any], shared: _Shared, hint: str) -> list[Any]:
    """Tasks every list has (by reference, in the first list's order), each with what it shares."""
    if not all(isinstance(item, list) for item in lists):
        return []
    by_ref = [
        {t.get("taskReferenceName"): t for t in tasks if isinstance(t, Mapping)} for tasks in lists
    ]
    out = []
    for task in lists[0]:
        ref = task.get("taskReferenceName") if isinstance(task, Mapping) else None
        if ref is None or not all(ref in refs for refs in by_ref):
            continue
        same = [refs[ref] for refs in by_ref]
        plain = _common_map([{k: v for k, v in t.items() if k not in TASK_LISTS} for t in same],
                            shared, f"{hint}_{ref}")  # fmt: skip
        for name in TASK_LISTS:
            if not all(name in t for t in same):
                continue
            items = [t[name] for t in same]
            if name == "decisionCases" and all(isinstance(i, Mapping) for i in items):
                plain[name] = {
                    case: _common_tasks([i[case] for i in items], shared, hint)
                    for case in items[0] if all(case in i for i in items)
                }  # fmt: skip
            elif name == "forkTasks" and all(
                isinstance(i, list) and len(i) == len(items[0]) for i in items
            ):
                plain[name] = [
                    _common_tasks([i[b] for i in items], shared, hint) for b in range(len(items[0]))
                ]
            elif name in ("defaultCase", "loopOver"):
                plain[name] = _common_tasks(items, shared, hint)
        out.append(plain)
    return out


def _resolve(spec: Any, values: Mapping[str, Any]) -> Any:
    """``spec`` with its whole-value ``((vars.X))`` replaced from ``values``."""
    if isinstance(spec, str):
        match = re.fullmatch(r"\(\(vars\.([A-Za-z0-9_]+)\)\)", spec)
        return values.get(match[1], spec) if match else spec
    if isinstance(spec, Mapping):
        return {k: _resolve(v, values) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_resolve(v, values) for v in spec]
    return spec


# -- overlays ---------------------------------------------------------------------------------------


def overlay(kind: str, base: Mapping[str, Any], target: Mapping[str, Any],
            flavour: Flavour = "3.15") -> dict[str, Any]:  # fmt: skip
    """The body of an overlay (``patch`` and/or ``jsonPatch``) that turns ``base`` into
    ``target``; empty when they are the same. Checked by applying it."""
    if _same(kind, base, target, flavour):
        return {}
    try:
        said = _checked(kind, base, target, flavour,
                        patch=patch_for(edits(kind, base, target, flavour)), ops=[])  # fmt: skip
    except Unsaid:
        said = None
    if said is None and KINDS[kind].keyed_tasks:  # the fields by merge, the task list whole
        ops = [{"op": "replace", "path": "/tasks", "value": copy.deepcopy(target.get("tasks", []))}]
        fields = patch_for(field_edits(kind, base, target, flavour))
        said = _checked(kind, base, target, flavour, patch=fields, ops=ops)
    return said or _json_patch_only(kind, base, target, flavour)


def _checked(kind: str, base: Mapping[str, Any], target: Mapping[str, Any], flavour: Flavour, *,
             patch: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any] | None:  # fmt: skip
    """The overlay, if applying it to ``base`` gives ``target``."""
    spec = copy.deepcopy(dict(base))
    try:
        merge_resource(kind, spec, patch)
    except OverlayError:
        return None
    if ops:
        spec = jsonpatch.apply_patch(spec, ops)
    if not _same(kind, spec, target, flavour):
        return None
    body: dict[str, Any] = {}
    if patch:
        body["patch"] = patch
    if ops:
        body["jsonPatch"] = ops
    return body


def _json_patch_only(kind: str, base: Mapping[str, Any], target: Mapping[str, Any],
                     flavour: Flavour) -> dict[str, Any]:  # fmt: skip
    """Replace, add or remove each top-level field that differs: always right, never small."""
    ops: list[dict[str, Any]] = []
    for key in target:
        if key not in base:
            ops.append(
                {"op": "add", "path": f"/{_pointer(key)}", "value": copy.deepcopy(target[key])}
            )
        elif canonical_json(base[key]) != canonical_json(target[key]):
            ops.append(
                {"op": "replace", "path": f"/{_pointer(key)}", "value": copy.deepcopy(target[key])}
            )
    ops += [{"op": "remove", "path": f"/{_pointer(key)}"} for key in base if key not in target]
    return {"jsonPatch": ops}


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _same(kind: str, a: Mapping[str, Any], b: Mapping[str, Any], flavour: Flavour) -> bool:
    return canonical_json(normalize(kind, a, flavour)) == canonical_json(
        normalize(kind, b, flavour)
    )


# -- files ------------------------------------------------------------------------------------------


def _title(key: Key) -> str:
    return f"{key[0]} {key[1]}" + (f" v{key[2]}" if key[2] is not None else "")


def _order(key: Key) -> tuple[int, str, int]:
    return (KINDS[key[0]].order, key[1], key[2] or 0)


def _target(key: Key) -> dict[str, Any]:
    return {"name": key[1], **({"version": key[2]} if key[2] is not None else {})}


def with_vars(text: str, variables: Mapping[str, Any]) -> str:
    """environment.yaml ``text`` with ``variables`` set under ``vars:`` (comments kept when
    ``vars:`` is a block mapping or absent)."""
    if re.search(r"(?m)^vars:[ \t]*[^\s#]", text):  # flow style (vars: {...}): rewrite the file
        data = yaml.safe_load(text) or {}
        data["vars"] = {**(data.get("vars") or {}), **variables}
        return dump_documents([data], explicit_start=False)
    if not re.search(r"(?m)^vars:", text):
        text = text.rstrip("\n") + "\nvars:\n"
    head = re.search(r"(?m)^vars:[ \t]*(#.*)?\n", text)
    assert head is not None
    end = re.search(r"(?m)^\S", text[head.end() :])  # the next top-level key ends the block
    stop = head.end() + end.start() if end else len(text)
    block = text[head.end() : stop]
    for name, value in sorted(variables.items()):
        line = f"  {name}: {json.dumps(value)}"
        existing = re.search(rf"(?m)^  {re.escape(name)}:.*$", block)
        if existing is not None:
            block = block[: existing.start()] + line + block[existing.end() :]
        else:
            block = line + "\n" + block
    return text[: head.end()] + block + text[stop:]
