"""A plan's changes as ordered write steps (docs/cli.md, metasync apply). Pure: no I/O.

Kinds in their apply order (model/kinds/: task definitions, whose tasks workflows run, then
workflows, then what starts them), creates and updates first, objects of a kind that call one
another callees first (sub-workflows before their parents); then the deletes, in reverse: what
starts workflows, callers before the workflows they call, task definitions last. Writes are
batched where the server takes lists (the kind's endpoints say so), at most ``BATCH_OBJECTS``
objects a step (the client splits a step's request further when its body passes
``conductor.client.BATCH_BYTES``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from metasync.model.kinds import IN_ORDER, Kind
from metasync.model.tasks import callees_first
from metasync.plan.model import Change, Plan

Action = Literal["create", "update", "delete"]

#: the most objects one write step (one request) carries
BATCH_OBJECTS = 250


@dataclass(frozen=True, slots=True)
class Step:
    kind: Kind
    action: Action
    changes: tuple[Change, ...]

    def describe(self) -> str:
        """``create WorkflowDef: a v1, b v1``; a batch of more than 5: its count, first and last."""
        if len(self.changes) > 5:
            first, last = self.changes[0].title, self.changes[-1].title
            return f"{self.action} {self.kind.name}: {len(self.changes)} objects, {first} … {last}"
        names = ", ".join(c.title for c in self.changes)
        return f"{self.action} {self.kind.name}: {names}"


def steps_for(plan: Plan, force: bool = False) -> list[Step]:
    """The write steps for the plan's changes; blocked ones only with ``force``."""
    pending = [c for c in plan.pending if force or c.blocked is None]
    steps: list[Step] = []
    for kind in IN_ORDER:
        writes = [c for c in pending if c.kind == kind.name and c.action == "create"]
        writes += [c for c in pending if c.kind == kind.name and c.action == "update"]
        if kind.calls_its_own:
            writes = callees_first(writes, _name, lambda c: c.desired or {})
        steps += _batched(kind, writes)
    for kind in reversed(IN_ORDER):
        deletes = [c for c in pending if c.kind == kind.name and c.action == "delete"]
        if kind.calls_its_own:
            deletes = list(reversed(callees_first(deletes, _name, lambda c: c.live or {})))
        steps += [Step(kind, "delete", (c,)) for c in deletes]
    return steps


def _batched(kind: Kind, changes: list[Change]) -> list[Step]:
    """One step per object, or one per run of the same action (at most ``BATCH_OBJECTS``) where
    the server takes a list: a create too where the update's list upserts."""
    at = kind.endpoints
    batch = {"create": at.create_batch or at.create_via_update, "update": at.update_batch}
    steps: list[Step] = []
    for change in changes:
        action: Action = "create" if change.action == "create" else "update"
        last = steps[-1] if steps else None
        if (last is not None and batch[action] and last.action == action
                and len(last.changes) < BATCH_OBJECTS):  # fmt: skip
            steps[-1] = Step(kind, action, (*last.changes, change))
        else:
            steps.append(Step(kind, action, (change,)))
    return steps


def _name(change: Change) -> str:
    return change.name
