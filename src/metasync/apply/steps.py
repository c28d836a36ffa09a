"""A plan's changes as ordered write steps (DESIGN.md section 5). Pure: no I/O.

Task definitions first (HTTP/JQ/Kafka tasks may take their input from them), then workflows with
sub-workflows before their parents, then event handlers. Writes are batched where the server takes
lists: new task definitions in one POST, changed workflows in one PUT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from metasync.model.tasks import callees_first
from metasync.plan.model import Change, Plan

Operation = Literal[
    "create_taskdefs", "update_taskdef", "create_workflow", "update_workflows",
    "create_event_handler", "update_event_handler",
    "delete_event_handler", "delete_workflow", "delete_taskdef",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Step:
    operation: Operation
    changes: tuple[Change, ...]

    def describe(self) -> str:
        names = ", ".join(c.title for c in self.changes)
        return f"{self.operation.replace('_', ' ')}: {names}"


def steps_for(plan: Plan, force: bool = False) -> list[Step]:
    """The write steps for the plan's changes; blocked ones only with ``force``."""
    pending = [c for c in plan.pending if force or c.blocked is None]
    by = {
        (kind, action): [c for c in pending if c.kind == kind and c.action == action]
        for kind in ("TaskDef", "WorkflowDef", "EventHandler")
        for action in ("create", "update")
    }
    steps: list[Step] = []
    if by["TaskDef", "create"]:
        steps.append(Step("create_taskdefs", tuple(by["TaskDef", "create"])))
    steps += [Step("update_taskdef", (c,)) for c in by["TaskDef", "update"]]
    workflows = callees_first(by["WorkflowDef", "create"] + by["WorkflowDef", "update"],
                              _name, lambda c: c.desired or {})  # fmt: skip
    batch: list[Change] = []
    for change in workflows:
        if change.action == "create":
            if batch:
                steps.append(Step("update_workflows", tuple(batch)))
                batch = []
            steps.append(Step("create_workflow", (change,)))
        else:
            batch.append(change)
    if batch:
        steps.append(Step("update_workflows", tuple(batch)))
    steps += [Step("create_event_handler", (c,)) for c in by["EventHandler", "create"]]
    steps += [Step("update_event_handler", (c,)) for c in by["EventHandler", "update"]]
    # deletes last, in reverse: handlers, then callers before the workflows they call, then task defs
    deletes = [c for c in pending if c.action == "delete"]
    steps += [Step("delete_event_handler", (c,)) for c in deletes if c.kind == "EventHandler"]
    workflows = callees_first([c for c in deletes if c.kind == "WorkflowDef"],
                              _name, lambda c: c.live or {})  # fmt: skip
    steps += [Step("delete_workflow", (c,)) for c in reversed(workflows)]
    steps += [Step("delete_taskdef", (c,)) for c in deletes if c.kind == "TaskDef"]
    return steps


def _name(change: Change) -> str:
    return change.name
