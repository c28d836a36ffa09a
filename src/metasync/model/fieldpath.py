"""Field paths as plans show them, for people to name fields: ``timeoutSeconds``,
``inputParameters.http_request.headers.Authorization``, ``tasks[ref=charge].inputParameters.uri``.

A path is keys joined by dots, from the object's root, or from a workflow's tasks: ``tasks[ref=X]``
names the task with reference X wherever it is nested (switch cases, forks, loops), as a plan
shows it; X may be a glob (``tasks[ref=notify_*]``) and ``tasks[*]`` names every task. Lists
other than the tasks are values: a path ends at them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metasync.model.tasks import TASK_LISTS

_TASKS = re.compile(r"^tasks\[(?:ref=(?P<ref>[^\]]+)|(?P<all>\*))\](?:\.(?P<rest>.*))?$", re.S)
#: what identifies an object or a task: never ignored, always git's
_IDENTITY = ("name", "version")
_TASK_IDENTITY = ("taskReferenceName", *TASK_LISTS)


@dataclass(frozen=True, slots=True)
class FieldPath:
    #: a glob of task references (``*``: every task); None: the path starts at the object's root
    tasks: str | None
    keys: tuple[str, ...]

    def __str__(self) -> str:
        keys = ".".join(self.keys)
        if self.tasks is None:
            return keys
        return ("tasks[*]" if self.tasks == "*" else f"tasks[ref={self.tasks}]") + f".{keys}"


def parse_field_path(text: str) -> FieldPath:
    """``text`` as a field path; ValueError says what is wrong with it."""
    tasks: str | None = None
    rest = text.strip()
    if text != rest or not rest:
        raise ValueError(
            f"{text!r} is not a field path: write keys joined by dots, no spaces around"
        )
    found = _TASKS.match(rest)
    if found is not None:
        tasks = found["ref"] or "*"
        rest = found["rest"] or ""
        if not rest:
            raise ValueError(
                f"{text!r} names a whole task: name a field of it, e.g. {text}.inputParameters"
            )
    elif rest == "tasks" or rest.startswith(("tasks.", "tasks[")):
        raise ValueError(
            f"{text!r}: name tasks by their reference, tasks[ref=NAME].field, or every task, "
            "tasks[*].field"
        )
    keys = tuple(rest.split("."))
    if any(not key or "[" in key or "]" in key for key in keys):
        raise ValueError(
            f"{text!r} is not a field path: keys are joined by single dots, and only "
            "tasks[ref=NAME] or tasks[*] take brackets (other lists are values: end the path there)"
        )
    if tasks is None and keys[0] in _IDENTITY:
        raise ValueError(f"{text!r}: {keys[0]} says which object it is: it cannot be ignored")
    if tasks is not None and keys[0] in _TASK_IDENTITY:
        raise ValueError(
            f"{text!r}: {keys[0]} holds the task's identity or its nested tasks: it cannot be "
            "ignored (name a field of a nested task with its own tasks[ref=NAME])"
        )
    return FieldPath(tasks, keys)
