"""Field-level differences between two canonical objects, tasks matched by reference.

Maps are compared by key. A workflow's tasks are matched by ``taskReferenceName`` wherever they are
nested (switch cases, default case, fork branches, loops): a changed field is reported at
``tasks[ref=X].field``; an inserted or removed task is one entry ``tasks[ref=X]`` (its nested tasks
travel with it); a list of tasks whose members stay but whose order changes is one entry at the
list's path with the references before and after. Other lists are values: replaced as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metasync.model.kinds import KINDS
from metasync.model.tasks import TASK_LISTS
from metasync.plan.model import FieldChange

_MISSING: Any = object()


def diff(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[FieldChange]:
    if KINDS[kind].keyed_tasks:
        return _workflow(before, after)
    return _values(before, after, "")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _values(before: Any, after: Any, path: str) -> list[FieldChange]:
    if before == after:
        return []
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        changes: list[FieldChange] = []
        for key in dict.fromkeys([*before, *after]):
            changes += _values(
                before.get(key, _MISSING), after.get(key, _MISSING), _join(path, key)
            )
        return changes
    return [
        FieldChange(
            path, None if before is _MISSING else before, None if after is _MISSING else after
        )
    ]


@dataclass(frozen=True, slots=True)
class _Task:
    task: Mapping[str, Any]  # the whole task, nested tasks included
    own: Mapping[str, Any]  # its fields without the nested task lists
    parent: str | None  # reference of the task whose list holds it


def _index(tasks: Sequence[Any]) -> tuple[dict[str, _Task], dict[str, list[str]]]:
    """Every task by reference, and every task list (by path) as its references in order."""
    by_ref: dict[str, _Task] = {}
    lists: dict[str, list[str]] = {}

    def walk(items: Sequence[Any], list_path: str, parent: str | None) -> None:
        refs = lists.setdefault(list_path, [])
        for task in items:
            if not isinstance(task, Mapping):
                continue
            ref = str(task.get("taskReferenceName"))
            refs.append(ref)
            own = {k: v for k, v in task.items() if k not in TASK_LISTS}
            by_ref[ref] = _Task(task, own, parent)
            here = f"tasks[ref={ref}]"
            for case, branch in (task.get("decisionCases") or {}).items():
                walk(branch or (), f"{here}.decisionCases.{case}", ref)
            walk(task.get("defaultCase") or (), f"{here}.defaultCase", ref)
            for i, branch in enumerate(task.get("forkTasks") or ()):
                walk(branch or (), f"{here}.forkTasks[{i}]", ref)
            walk(task.get("loopOver") or (), f"{here}.loopOver", ref)

    walk(tasks, "tasks", None)
    return by_ref, {path: refs for path, refs in lists.items() if refs or path == "tasks"}


def tasks_by_ref(workflow: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every task of ``workflow`` at any depth, by reference (each with its nested tasks)."""
    by_ref, _ = _index(workflow.get("tasks") or ())
    return {ref: entry.task for ref, entry in by_ref.items()}


def _workflow(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[FieldChange]:
    changes = _values(
        {k: v for k, v in before.items() if k != "tasks"},
        {k: v for k, v in after.items() if k != "tasks"},
        "",
    )
    old, old_lists = _index(before.get("tasks") or ())
    new, new_lists = _index(after.get("tasks") or ())
    for ref, entry in new.items():
        if ref not in old and (entry.parent is None or entry.parent in old):
            changes.append(FieldChange(f"tasks[ref={ref}]", None, entry.task))
    for ref, entry in old.items():
        if ref not in new and (entry.parent is None or entry.parent in new):
            changes.append(FieldChange(f"tasks[ref={ref}]", entry.task, None))
    for ref, entry in new.items():
        if ref in old:
            changes += _values(old[ref].own, entry.own, f"tasks[ref={ref}]")
    for path in dict.fromkeys([*old_lists, *new_lists]):
        kept_before = [r for r in old_lists.get(path, ()) if r in new]
        kept_after = [r for r in new_lists.get(path, ()) if r in old]
        if kept_before != kept_after:
            changes.append(FieldChange(path, kept_before, kept_after))
    return changes
