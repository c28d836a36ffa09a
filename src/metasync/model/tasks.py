"""Walking the tasks of a workflow definition at every depth."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from metasync.model.flavour import COMMON_TASK_TYPES
from metasync.model.paths import RawPath

T = TypeVar("T")

#: Conductor's system task types on both flavours (model/flavour.py has each flavour's)
SYSTEM_TASK_TYPES = COMMON_TASK_TYPES


@dataclass(frozen=True, slots=True)
class TaskAt:
    task: Mapping[str, Any]
    path: RawPath  # from the workflow's root, e.g. ("tasks", 2, "forkTasks", 0, 1)
    top_level: bool
    #: inside a DO_WHILE's loopOver, where neither flavour validates anything at registration
    in_loop: bool = False

    @property
    def ref(self) -> str:
        return str(self.task.get("taskReferenceName", ""))

    @property
    def type(self) -> str:
        return str(self.task.get("type") or "SIMPLE")


def walk_tasks(workflow: Mapping[str, Any]) -> Iterator[TaskAt]:
    """Every task of ``workflow`` in document order, with its raw path."""
    yield from _walk(workflow.get("tasks") or (), ("tasks",), top_level=True)


def _walk(tasks: Sequence[Any], path: RawPath, top_level: bool,
          in_loop: bool = False) -> Iterator[TaskAt]:  # fmt: skip
    for i, task in enumerate(tasks):
        if not isinstance(task, Mapping):
            continue
        here = (*path, i)
        yield TaskAt(task, here, top_level, in_loop)
        for case, branch in (task.get("decisionCases") or {}).items():
            yield from _walk(branch or (), (*here, "decisionCases", case), False, in_loop)
        yield from _walk(task.get("defaultCase") or (), (*here, "defaultCase"), False, in_loop)
        for j, branch in enumerate(task.get("forkTasks") or ()):
            yield from _walk(branch or (), (*here, "forkTasks", j), False, in_loop)
        yield from _walk(task.get("loopOver") or (), (*here, "loopOver"), False, True)


#: the fields of a task that hold lists of tasks
TASK_LISTS = ("decisionCases", "defaultCase", "forkTasks", "loopOver")


def child_lists(task: Mapping[str, Any]) -> list[Any]:
    """The task lists a task holds (switch cases, default case, fork branches, loop body), as the
    very list objects, so a caller may change them in place."""
    lists: list[Any] = [
        b for b in (task.get("decisionCases") or {}).values() if isinstance(b, list)
    ]
    lists += [task[k] for k in ("defaultCase", "loopOver") if isinstance(task.get(k), list)]
    lists += [b for b in task.get("forkTasks") or () if isinstance(b, list)]
    return lists


def find_task(tasks: Sequence[Any], ref: str) -> tuple[Any, int] | None:
    """The list that holds task ``ref`` (at any depth), and its index there; None if none."""
    for i, task in enumerate(tasks):
        if not isinstance(task, Mapping):
            continue
        if task.get("taskReferenceName") == ref:
            return tasks, i
        for child in child_lists(task):
            found = find_task(child, ref)
            if found is not None:
                return found
    return None


def sub_workflows(workflow: Mapping[str, Any]) -> set[str]:
    """The names of the workflows ``workflow`` calls (SUB_WORKFLOW tasks, at any depth)."""
    return {
        str((at.task.get("subWorkflowParam") or {}).get("name"))
        for at in walk_tasks(workflow)
        if at.type == "SUB_WORKFLOW"
    }


def callees_first(items: Sequence[T], name: Callable[[T], str],
                  spec: Callable[[T], Mapping[str, Any]],
                  callees: Callable[[T], set[str]] | None = None) -> list[T]:  # fmt: skip
    """``items`` (workflows, or changes to them) with every sub-workflow before the workflows
    that call it; stable otherwise, a cycle broken where it is found. Items of one name (its
    versions) stay together. ``callees``: an item's sub-workflows, when the caller has them
    (default: found in ``spec``)."""
    by_name: dict[str, list[T]] = {}
    for item in items:
        by_name.setdefault(name(item), []).append(item)
    position = {n: i for i, n in enumerate(by_name)}
    calls: dict[str, set[str]] = {n: set() for n in by_name}
    for item in items:
        calls[name(item)] |= callees(item) if callees is not None else sub_workflows(spec(item))
    ordered: list[T] = []
    seen: set[str] = set()

    def place(current: str) -> None:
        if current in seen:
            return
        seen.add(current)
        # in the order the items came
        for callee in sorted(calls[current] & position.keys(), key=position.__getitem__):
            if callee != current:
                place(callee)
        ordered.extend(by_name[current])

    for current in by_name:
        place(current)
    return ordered


@dataclass(frozen=True, slots=True)
class Placed:
    """A task, and where it sits: the task whose list holds it (None: top level) and that list's
    references in order."""

    task: Mapping[str, Any]
    parent: str | None
    siblings: tuple[str, ...]


def index_tasks(tasks: Sequence[Any]) -> dict[str, Placed]:
    """Every task of a task list, at any depth, by its reference, in document order."""
    found: dict[str, Placed] = {}

    def walk(items: Sequence[Any], parent: str | None) -> None:
        refs = tuple(str(t.get("taskReferenceName")) for t in items if isinstance(t, Mapping))
        for task in items:
            if not isinstance(task, Mapping):
                continue
            ref = str(task.get("taskReferenceName"))
            found[ref] = Placed(task, parent, refs)
            for child in child_lists(task):
                walk(child, ref)

    walk(tasks, None)
    return found
