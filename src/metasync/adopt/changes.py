"""What turns one definition into another, as edits by task reference. Pure.

The same edits say a change in two places: ``drift --adopt`` makes them in a manifest, in place;
an overlay (export, adopt) says them as a strategic-merge patch. Both compare the smallest forms
(defaults and server fields out), so only real differences become edits.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metasync.adopt.export import minimal
from metasync.conductor.normalize import Flavour
from metasync.model.fingerprint import canonical_json
from metasync.model.kinds import KINDS
from metasync.model.tasks import TASK_LISTS, Placed, index_tasks


class Unsaid(Exception):
    """Edits cannot say this change (a task moved, or has no neighbour to be placed by)."""


@dataclass(frozen=True, slots=True)
class Edit:
    """Set (``value``) or remove (``remove``) ``keys`` of the task ``ref`` (None: the object)."""

    ref: str | None
    keys: tuple[str, ...]
    value: Any = None
    remove: bool = False


@dataclass(frozen=True, slots=True)
class AddTask:
    task: Mapping[str, Any]
    after: str | None  # the task it follows in its list, or
    before: str | None  # the task it precedes


@dataclass(frozen=True, slots=True)
class DeleteTask:
    ref: str


Change = Edit | AddTask | DeleteTask


def edits(kind: str, desired: Mapping[str, Any], live: Mapping[str, Any],
          flavour: Flavour) -> list[Change]:  # fmt: skip
    """What turns ``desired`` (a manifest, variables resolved) into ``live``; raises Unsaid for
    what edits cannot say (a different task order)."""
    want, have = minimal(kind, live, flavour), minimal(kind, desired, flavour)
    if not KINDS[kind].keyed_tasks:
        return list(_fields(None, have, want, ()))
    found: list[Change] = list(_fields(None, _own(have, "tasks"), _own(want, "tasks"), ()))
    old, new = index_tasks(have.get("tasks") or []), index_tasks(want.get("tasks") or [])
    gone = {ref for ref in old if ref not in new}
    # a deleted task takes its nested tasks with it
    found += [DeleteTask(ref) for ref in gone if old[ref].parent not in gone]
    known = set(old) - gone  # what a new task can be placed next to, as they are added
    for ref, placed in new.items():
        if ref in old:
            was = old[ref]
            if (was.parent, [s for s in was.siblings if s in new]) != (
                placed.parent,
                [s for s in placed.siblings if s in old],
            ):
                raise Unsaid(f"task {ref} moved")
            found += _fields(ref, _own(was.task), _own(placed.task), ())
        elif placed.parent is None or placed.parent in old:  # nested new tasks come with it
            found.append(_placed(ref, placed, known))
            known |= set(index_tasks([placed.task]))
    return found


def field_edits(kind: str, desired: Mapping[str, Any], live: Mapping[str, Any],
                flavour: Flavour) -> list[Edit]:  # fmt: skip
    """The edits to the object's own fields (a workflow's tasks aside)."""
    want, have = minimal(kind, live, flavour), minimal(kind, desired, flavour)
    return list(_fields(None, _own(have, "tasks"), _own(want, "tasks"), ()))


def patch_for(changes: Sequence[Change]) -> dict[str, Any]:
    """The edits as an overlay's strategic-merge patch (docs/environments.md): fields as a map,
    ``null`` to remove; task entries by ``taskReferenceName``, ``$after``/``$before``,
    ``$patch: delete``."""
    patch: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    by_ref: dict[str, dict[str, Any]] = {}
    for change in changes:
        if isinstance(change, Edit):
            node = patch
            if change.ref is not None:
                if change.ref not in by_ref:
                    by_ref[change.ref] = {"taskReferenceName": change.ref}
                    entries.append(by_ref[change.ref])
                node = by_ref[change.ref]
            for key in change.keys[:-1]:
                node = node.setdefault(key, {})
            node[change.keys[-1]] = None if change.remove else copy.deepcopy(change.value)
        elif isinstance(change, DeleteTask):
            entries.append({"taskReferenceName": change.ref, "$patch": "delete"})
        else:
            anchor = {"$after": change.after} if change.after else {"$before": change.before}
            entries.append({**copy.deepcopy(dict(change.task)), **anchor})
    if entries:
        patch["tasks"] = entries
    return patch


def _own(task: Mapping[str, Any], *more: str) -> dict[str, Any]:
    return {k: v for k, v in task.items() if k not in TASK_LISTS and k not in more}


def _fields(ref: str | None, have: Mapping[str, Any], want: Mapping[str, Any],
            keys: tuple[str, ...]) -> Iterator[Edit]:  # fmt: skip
    for key in dict.fromkeys([*have, *want]):
        if key not in want:
            yield Edit(ref, (*keys, key), remove=True)
        elif key not in have:
            yield Edit(ref, (*keys, key), copy.deepcopy(want[key]))
        elif canonical_json(have[key]) != canonical_json(want[key]):
            if isinstance(have[key], Mapping) and isinstance(want[key], Mapping):
                yield from _fields(ref, have[key], want[key], (*keys, key))
            else:
                yield Edit(ref, (*keys, key), copy.deepcopy(want[key]))


def _placed(ref: str, placed: Placed, known: set[str]) -> AddTask:
    """After the nearest sibling before it that is there already, or before the next one."""
    i = placed.siblings.index(ref)
    before = [s for s in placed.siblings[:i] if s in known]
    after = [s for s in placed.siblings[i + 1 :] if s in known]
    if before:
        return AddTask(copy.deepcopy(dict(placed.task)), before[-1], None)
    if after:
        return AddTask(copy.deepcopy(dict(placed.task)), None, after[0])
    raise Unsaid(f"task {ref} has no neighbour in the manifest to be placed by")
