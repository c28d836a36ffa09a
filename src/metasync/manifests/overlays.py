"""Per-environment overlays (docs/environments.md): strategic merge, then RFC 6902 JSON Patch.

``environments/<env>/overlays/*.yaml`` hold documents that each target one resource::

    kind: WorkflowDef
    metadata: {name: order_fulfillment}     # version: N to target one version only
    patch:                                  # strategic merge
      timeoutSeconds: 600
      tasks:
        - taskReferenceName: charge         # addresses that task wherever it is nested
          retryCount: 5
        - {taskReferenceName: audit_log, $patch: delete}
        - {name: notify, taskReferenceName: notify_qa, type: SIMPLE, $after: charge}
    jsonPatch: []                           # RFC 6902 operations, applied after `patch`

Merge rules: maps merge recursively; ``null`` in the overlay removes the key (a ``null`` already in
the base stays); task lists merge by ``taskReferenceName``; any other list is replaced. In a task
list, an entry without ``name`` changes an existing task (a missing one is an error: a typo must not
become a new task); an entry with ``name`` and a reference that does not exist yet is a new task,
placed right after ``$after: REF`` or before ``$before: REF`` in whatever list holds REF, or else at
the end of the list it is written in. ``$patch: delete`` removes the task (and what it holds).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
from pydantic import BaseModel, ValidationError

from metasync.errors import Location, MetasyncError, Problem, did_you_mean
from metasync.manifests.loader import FileReader
from metasync.manifests.schema import problems_from
from metasync.manifests.variables import Lookup, Unresolved, substitute
from metasync.manifests.yamlio import DocumentLocator, parse_documents, read_text
from metasync.model.kinds import KINDS
from metasync.model.paths import display_path
from metasync.model.resource import Resource
from metasync.model.tasks import TASK_LISTS, child_lists, find_task

OVERLAYS_DIR = "overlays"
_ENVELOPE = ("apiVersion", "kind", "metadata", "patch", "jsonPatch")
_METADATA = ("name", "version")
_DIRECTIVES = ("$patch", "$after", "$before")


class OverlayError(Exception):
    """One problem at a raw path of the overlay document."""

    def __init__(self, message: str, path: tuple[str | int, ...], hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.hint = hint


@dataclass
class OverlayResult:
    resources: list[Resource]
    problems: list[Problem] = field(default_factory=list)


def overlay_files(root: Path, env: str) -> list[Path]:
    base = root / "environments" / env / OVERLAYS_DIR
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def overlay_readers(root: Path, env: str) -> list[tuple[str, FileReader]]:
    """(display name, reader) of each overlay file of ``env``."""
    return [(p.relative_to(root).as_posix(), FileReader(p, p.relative_to(root).as_posix()))
            for p in overlay_files(root, env)]  # fmt: skip


def apply_overlays(
    root: Path, env: str, resources: Sequence[Resource], lookup: Lookup
) -> OverlayResult:
    """Every overlay of ``env`` applied to ``resources`` (which are not changed: copies are made)."""
    result = OverlayResult(list(resources))
    index = {r.key: i for i, r in enumerate(result.resources)}
    claimed: dict[tuple[str, str, int | None], DocumentLocator] = {}
    for path in overlay_files(root, env):
        display = path.relative_to(root).as_posix()
        try:
            docs = parse_documents(read_text(path, display), display)
        except MetasyncError as exc:
            result.problems.extend(exc.problems)
            continue
        for doc in docs:
            locator = doc.locator

            def fail(message: str, at: tuple[str | int, ...], hint: str | None = None,
                     locator: DocumentLocator = locator, data: Any = doc.data) -> None:  # fmt: skip
                display = display_path(data, at)
                result.problems.append(Problem(message, locator.locate(at, display), hint))

            target = _target(doc.data, fail)
            if target is None:
                continue
            kind, name, version = target
            keys = [
                k
                for k in index
                if k[0] == kind and k[1] == name and (version is None or k[2] == version)
            ]
            if not keys:
                known = {k[1] for k in index if k[0] == kind}
                fail(
                    f"overlay targets {kind} {name}" + (f" v{version}" if version else "")
                    + f", which is not in manifests/{did_you_mean(name, known)}",
                    ("metadata", "name"),
                    "Check the name (and version), or remove the overlay.",
                )  # fmt: skip
                continue
            data = (
                doc.data
                if "((" not in str(doc.data)
                else _substituted(doc.data, lookup, locator, result)
            )
            if data is None:
                continue
            for key in keys:
                first = claimed.get(key)
                if first is not None:
                    there = first.locate(("metadata", "name"))
                    fail(
                        f"a second overlay for {kind} {name}; the first is at {there.file}:{there.line}",
                        ("metadata", "name"),
                        "Keep one overlay per resource and environment.",
                    )
                    continue
                claimed[key] = locator
                resource = result.resources[index[key]]
                patched = _patch_one(resource, data, locator, result.problems)
                if patched is not None:
                    result.resources[index[key]] = patched
    return result


def _target(data: Any, fail: Any) -> tuple[str, str, int | None] | None:
    if not isinstance(data, dict):
        fail("an overlay document must be a mapping", ())
        return None
    ok = True
    for key in data:
        if key not in _ENVELOPE:
            fail(f"unknown field {key!r}{did_you_mean(str(key), _ENVELOPE)}", (key,),
                 "An overlay has kind, metadata, patch and jsonPatch.")  # fmt: skip
            ok = False
    kind = data.get("kind")
    if kind not in KINDS:
        fail(f"unknown kind {kind!r}{did_you_mean(str(kind), KINDS)}" if kind else "missing kind",
             ("kind",), f"kind is one of: {', '.join(KINDS)}.")  # fmt: skip
        return None
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        fail("metadata.name must name the resource to change", ("metadata",))
        return None
    for key in metadata:
        if key not in _METADATA:
            fail(f"unknown field {key!r}{did_you_mean(str(key), _METADATA)}", ("metadata", key),
                 "An overlay's metadata has name (and version, for one workflow version).")  # fmt: skip
            ok = False
    version = metadata.get("version")
    if version is not None and (not isinstance(version, int) or not KINDS[kind].versioned):
        fail("metadata.version must be an integer, and only workflows have versions",
             ("metadata", "version"))  # fmt: skip
        ok = False
    if "patch" in data and not isinstance(data["patch"], dict):
        fail("patch must be a mapping", ("patch",))
        ok = False
    if "jsonPatch" in data and not isinstance(data["jsonPatch"], list):
        fail("jsonPatch must be a list of RFC 6902 operations", ("jsonPatch",))
        ok = False
    return (kind, metadata["name"], version) if ok else None


def _substituted(data: Any, lookup: Lookup, locator: DocumentLocator, result: OverlayResult) -> Any:
    unresolved: list[Unresolved] = []
    data = substitute(data, lookup, unresolved)
    for u in unresolved:
        result.problems.append(
            Problem(u.message, locator.locate(u.path, display_path(data, u.path)), u.hint)
        )
    return None if unresolved else data


def _patch_one(resource: Resource, data: Mapping[str, Any], locator: DocumentLocator,
               problems: list[Problem]) -> Resource | None:  # fmt: skip
    spec = copy.deepcopy(dict(resource.spec))
    try:
        if "patch" in data:
            merge_resource(resource.kind, spec, data["patch"])
        ops = data.get("jsonPatch") or []
        for i, op in enumerate(ops):
            try:
                spec = jsonpatch.apply_patch(spec, [op])
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
                    KeyError, AttributeError) as exc:  # fmt: skip
                reason = str(exc).split(" in {", 1)[0]  # never echo the whole definition
                raise OverlayError(
                    f"JSON Patch operation {i} cannot be applied: {reason}",
                    ("jsonPatch", i),
                    "Check the op and path against the merged definition (`metasync render`).",
                ) from None
    except OverlayError as exc:
        display = display_path(data, exc.path)
        problems.append(
            Problem(f"{resource.title}: {exc.message}", locator.locate(exc.path, display), exc.hint)
        )
        return None
    if spec.get("name") != resource.name:
        problems.append(Problem(
            f"an overlay cannot rename {resource.title}", locator.locate(("patch", "name"), "patch.name"),
            "Overlays change a resource; a different name is a different resource.",
        ))  # fmt: skip
        return None
    model = KINDS[resource.kind].model
    try:
        model.model_validate(spec)
    except ValidationError as exc:
        root = locator.within("patch")
        found = problems_from(exc, model, spec, root, unknown="warning")
        known = _warnings_of(model, resource.spec)  # the base's own: said once, at the base
        for problem in found:
            if problem.severity == "warning" and problem.message in known:
                continue
            problems.append(Problem(f"after overlays, {resource.title}: {problem.message}",
                                    problem.location, problem.hint, problem.severity))  # fmt: skip
        if any(p.severity == "error" for p in found):
            return None
    version = spec.get("version", 1) if KINDS[resource.kind].versioned else None
    if version != resource.version:
        problems.append(Problem(
            f"an overlay cannot change the version of {resource.title}",
            locator.locate(("patch", "version"), "patch.version"),
            "Target one version with metadata.version instead.",
        ))  # fmt: skip
        return None
    return Resource(
        resource.kind, resource.name, resource.version, spec, resource.labels, resource.origin
    )


# -- strategic merge ------------------------------------------------------------------------------


def merge_resource(kind: str, spec: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """Merge ``patch`` into ``spec`` in place (raises OverlayError with the patch's raw path)."""
    if KINDS[kind].keyed_tasks and "tasks" in patch:
        rest = {k: v for k, v in patch.items() if k != "tasks"}
        _merge_map(spec, rest, ("patch",))
        if patch["tasks"] is None:
            raise OverlayError(
                "tasks cannot be removed: a workflow needs tasks", ("patch", "tasks")
            )
        if not isinstance(patch["tasks"], list):
            raise OverlayError("tasks must be a list of task entries", ("patch", "tasks"))
        spec.setdefault("tasks", [])
        _merge_tasks(spec, spec["tasks"], patch["tasks"], ("patch", "tasks"))
    else:
        _merge_map(spec, patch, ("patch",))


def _merge_map(base: dict[str, Any], patch: Mapping[str, Any], path: tuple[str | int, ...]) -> None:
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge_map(base[key], value, (*path, key))
        else:
            base[key] = copy.deepcopy(value)


def _merge_tasks(workflow: dict[str, Any], into: list[Any], entries: Sequence[Any],
                 path: tuple[str | int, ...]) -> None:  # fmt: skip
    top = workflow["tasks"]
    for i, entry in enumerate(entries):
        here = (*path, i)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("taskReferenceName"), str):
            raise OverlayError("a task entry needs taskReferenceName", here,
                               "Task lists merge by taskReferenceName.")  # fmt: skip
        ref = entry["taskReferenceName"]
        body = {k: v for k, v in entry.items() if k not in _DIRECTIVES}
        found = find_task(top, ref)
        if entry.get("$patch") is not None:
            if entry["$patch"] != "delete":
                raise OverlayError(f"$patch: {entry['$patch']!r} is not known", (*here, "$patch"),
                                   "The only task directive is `$patch: delete`.")  # fmt: skip
            if found is None:
                raise _missing(ref, top, (*here, "taskReferenceName"), "delete")
            holder, index = found
            del holder[index]
            continue
        anchor_key = "$after" if "$after" in entry else "$before" if "$before" in entry else None
        if found is not None:
            if anchor_key is not None:
                raise OverlayError(
                    f"task {ref!r} already exists; {anchor_key} places new tasks only", (*here, anchor_key),
                    "Drop the directive to change the task, or use a new taskReferenceName.",
                )  # fmt: skip
            holder, index = found
            _merge_task(workflow, holder[index], body, here)
            continue
        if "name" not in entry:
            raise _missing(ref, top, (*here, "taskReferenceName"), "change")
        new_task = copy.deepcopy(body)
        if anchor_key is None:
            into.append(new_task)
            continue
        anchor = entry[anchor_key]
        at = find_task(top, str(anchor))
        if at is None:
            raise _missing(str(anchor), top, (*here, anchor_key), f"place {ref!r} next to")
        holder, index = at
        holder.insert(index + 1 if anchor_key == "$after" else index, new_task)


def _merge_task(workflow: dict[str, Any], task: dict[str, Any], body: Mapping[str, Any],
                path: tuple[str | int, ...]) -> None:  # fmt: skip
    """Fields merge like any map; nested task lists merge by reference."""
    _merge_map(task, {k: v for k, v in body.items() if k not in TASK_LISTS or v is None}, path)
    for key, value in body.items():
        if key not in TASK_LISTS or value is None:
            continue
        if key == "forkTasks":
            holders = task.setdefault("forkTasks", [])
            for b, branch in enumerate(value):
                while len(holders) <= b:
                    holders.append([])
                _merge_tasks(workflow, holders[b], branch, (*path, key, b))
        elif key == "decisionCases":
            cases = task.setdefault("decisionCases", {})
            for case, branch in value.items():
                if branch is None:
                    cases.pop(case, None)
                else:
                    _merge_tasks(workflow, cases.setdefault(case, []), branch, (*path, key, case))
        else:
            _merge_tasks(workflow, task.setdefault(key, []), value, (*path, key))


def _missing(ref: str, tasks: list[Any], path: tuple[str | int, ...], what: str) -> OverlayError:
    refs: list[str] = []

    def collect(items: list[Any]) -> None:
        for task in items:
            if isinstance(task, dict):
                refs.append(str(task.get("taskReferenceName")))
                for child in child_lists(task):
                    collect(child)

    collect(tasks)
    return OverlayError(
        f"no task {ref!r} to {what} in this workflow{did_you_mean(ref, refs)}", path,
        "A task entry without `name` changes an existing task; give `name` (and `$after`) to add one.",
    )  # fmt: skip


def overlay_targets(root: Path, env: str) -> dict[tuple[str, str, int | None], tuple[str, int]]:
    """What each overlay document of ``env`` targets: (kind, name, version or None) -> (file
    relative to the project, document index). Documents that do not parse are left out."""
    found: dict[tuple[str, str, int | None], tuple[str, int]] = {}
    for path in overlay_files(root, env):
        display = path.relative_to(root).as_posix()
        try:
            docs = parse_documents(read_text(path, display), display)
        except MetasyncError:
            continue
        for index, doc in enumerate(docs):
            target = _target(doc.data, lambda *_: None)
            if target is not None:
                found.setdefault(target, (display, index))
    return found


class _Nowhere:
    def locate(self, path: Sequence[str | int], display: str = "") -> Location:
        return Location("", None, display)


_NOWHERE = _Nowhere()


def _warnings_of(model: type[BaseModel], spec: Mapping[str, Any]) -> set[str]:
    """The warnings (unknown fields) validating ``spec`` gives, by message."""
    try:
        model.model_validate(spec)
    except ValidationError as exc:
        return {p.message for p in problems_from(exc, model, spec, _NOWHERE, unknown="warning")}
    return set()
