"""Runs write steps against a server and records, per object, whether it landed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from metasync.apply.steps import Step
from metasync.conductor.client import LiveWriter
from metasync.conductor.live import stamp
from metasync.errors import MetasyncError, ServerError
from metasync.plan.model import Change, Landing, Outcome

#: kinds that carry a pass-through ownerApp field, where metasync writes its mark
MARKED_KINDS = ("TaskDef", "WorkflowDef")
# fields an in-place update takes from the body (a workflow PUT on both flavours, a task definition
# PUT on 3.15): echo the live ones to keep them
_KEEP_ON_PUT = ("createTime", "createdBy")


def execute(steps: Sequence[Step], writer: LiveWriter,
            on_step: Callable[[Step], None] | None = None, mark: str | None = None) -> list[Outcome]:  # fmt: skip
    """Run every step; a refused step marks its objects not landed and the rest still run."""
    outcomes: list[Outcome] = []
    for step in steps:
        if on_step is not None:
            on_step(step)
        try:
            _run(step, writer, mark)
        except ServerError as exc:
            status: Landing = "unknown" if exc.ambiguous else "not landed"
            outcomes += [Outcome(c, status, tuple(exc.problems)) for c in step.changes]
        except MetasyncError as exc:
            outcomes += [Outcome(c, "not landed", tuple(exc.problems)) for c in step.changes]
        else:
            outcomes += [Outcome(c, "landed") for c in step.changes]
    return outcomes


def _payload(change: Change, mark: str | None) -> dict[str, Any]:
    if change.action == "delete":
        return {}
    assert change.desired is not None, change.title
    payload = dict(change.desired)
    if mark is not None and change.kind in MARKED_KINDS:
        # the ownership mark (DESIGN.md section 7), with the fingerprint of what was written: a
        # live object whose fingerprint no longer matches it was edited on the server since
        payload["ownerApp"] = stamp(mark, change.desired_fingerprint)
    if change.kind in MARKED_KINDS and change.action == "update" and change.live is not None:
        payload |= {k: change.live[k] for k in _KEEP_ON_PUT if change.live.get(k)}
    return payload


def _run(step: Step, writer: LiveWriter, mark: str | None) -> None:
    payloads = [_payload(c, mark) for c in step.changes]
    actions: Mapping[str, Callable[[], None]] = {
        "create_taskdefs": lambda: writer.create_taskdefs(payloads),
        "update_taskdef": lambda: writer.update_taskdef(payloads[0]),
        "create_workflow": lambda: writer.create_workflow(payloads[0]),
        "update_workflows": lambda: writer.update_workflows(payloads),
        "create_event_handler": lambda: writer.create_event_handler(payloads[0]),
        "update_event_handler": lambda: writer.update_event_handler(payloads[0]),
        "delete_event_handler": lambda: writer.delete_event_handler(step.changes[0].name),
        "delete_workflow": lambda: writer.delete_workflow(
            step.changes[0].name, step.changes[0].version or 1
        ),
        "delete_taskdef": lambda: writer.delete_taskdef(step.changes[0].name),
    }
    actions[step.operation]()
