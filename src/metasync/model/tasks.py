"""Walking the tasks of a workflow definition at every depth."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metasync.model.paths import RawPath

#: Conductor's system task types (3.15 and OSS); any other type runs as a worker (SIMPLE) task
SYSTEM_TASK_TYPES = frozenset(
    {
        "SIMPLE",
        "DYNAMIC",
        "FORK_JOIN",
        "FORK_JOIN_DYNAMIC",
        "DECISION",
        "SWITCH",
        "JOIN",
        "EXCLUSIVE_JOIN",
        "DO_WHILE",
        "SUB_WORKFLOW",
        "START_WORKFLOW",
        "EVENT",
        "WAIT",
        "HUMAN",
        "USER_DEFINED",
        "HTTP",
        "LAMBDA",
        "INLINE",
        "TERMINATE",
        "KAFKA_PUBLISH",
        "JSON_JQ_TRANSFORM",
        "SET_VARIABLE",
        "NOOP",
    }
)


@dataclass(frozen=True, slots=True)
class TaskAt:
    task: Mapping[str, Any]
    path: RawPath  # from the workflow's root, e.g. ("tasks", 2, "forkTasks", 0, 1)
    top_level: bool

    @property
    def ref(self) -> str:
        return str(self.task.get("taskReferenceName", ""))

    @property
    def type(self) -> str:
        return str(self.task.get("type") or "SIMPLE")


def walk_tasks(workflow: Mapping[str, Any]) -> Iterator[TaskAt]:
    """Every task of ``workflow`` in document order, with its raw path."""
    yield from _walk(workflow.get("tasks") or (), ("tasks",), top_level=True)


def _walk(tasks: Sequence[Any], path: RawPath, top_level: bool) -> Iterator[TaskAt]:
    for i, task in enumerate(tasks):
        if not isinstance(task, Mapping):
            continue
        here = (*path, i)
        yield TaskAt(task, here, top_level)
        for case, branch in (task.get("decisionCases") or {}).items():
            yield from _walk(branch or (), (*here, "decisionCases", case), False)
        yield from _walk(task.get("defaultCase") or (), (*here, "defaultCase"), False)
        for j, branch in enumerate(task.get("forkTasks") or ()):
            yield from _walk(branch or (), (*here, "forkTasks", j), False)
        yield from _walk(task.get("loopOver") or (), (*here, "loopOver"), False)


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
