"""Runs write steps against a server and records, per object, whether it landed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from metasync.apply.steps import Step
from metasync.conductor.client import LiveWriter
from metasync.conductor.live import stamp
from metasync.errors import MetasyncError, Problem, ServerError
from metasync.model.kinds import KINDS
from metasync.plan.model import Change, Outcome


class Interrupted(Exception):
    """Ctrl-C during the steps: what became of every change (the step being sent: unknown; the
    steps after it: not applied)."""

    def __init__(self, outcomes: Sequence[Outcome]):
        super().__init__("interrupted")
        self.outcomes = tuple(outcomes)


#: a list refused with one of these names no object: its objects are sent one by one to tell which
_ONE_BY_ONE = frozenset({400, 409, 413, 422})


def execute(steps: Sequence[Step], writer: LiveWriter,
            on_step: Callable[[Step], None] | None = None, mark: str | None = None) -> list[Outcome]:  # fmt: skip
    """Run every step; a refused step marks its objects not landed and the rest still run. A batch
    the server refuses as a whole (validation, one made meanwhile) is sent again object by object,
    so that each outcome is that object's own. Ctrl-C stops at once: Interrupted, with the
    outcomes so far."""
    outcomes: list[Outcome] = []
    for index, step in enumerate(steps):
        sending: tuple[Change, ...] = ()
        done = len(outcomes)  # the outcomes of this step's objects sent one by one follow
        try:
            if on_step is not None:
                on_step(step)
            sending = step.changes
            several = len(step.changes) > 1
            if several and step.action == "create" and not writer.lists_creates(step.kind):
                sent: list[Outcome] = []  # this server takes them one at a time
                refused: int | None = None
            else:
                sent, refused = _outcomes(step, writer, mark)
            if several and (not sent or refused in _ONE_BY_ONE):
                for change in step.changes:
                    sending = (change,)
                    outcomes += _outcomes(Step(step.kind, step.action, sending), writer, mark)[0]
            else:
                outcomes += sent
        except KeyboardInterrupt:
            lost = Problem("interrupted while it was being sent: it may have landed or not",
                           hint="Plan again to see whether it did.")  # fmt: skip
            settled = {o.change.key for o in outcomes[done:]}
            on_its_way = {c.key for c in sending}
            outcomes += [Outcome(c, "unknown", (lost,)) if c.key in on_its_way
                         else Outcome(c, "not applied")
                         for c in step.changes if c.key not in settled]  # fmt: skip
            outcomes += [Outcome(c, "not applied") for later in steps[index + 1 :]
                         for c in later.changes]  # fmt: skip
            raise Interrupted(outcomes) from None
    return outcomes


def _outcomes(step: Step, writer: LiveWriter, mark: str | None) -> tuple[list[Outcome], int | None]:  # fmt: skip
    """The step sent as one (every change in it shares its outcome), and the status of a refusal
    that says nothing was written."""
    try:
        _run(step, writer, mark)
    except ServerError as exc:
        if exc.ambiguous:
            return [Outcome(c, "unknown", tuple(exc.problems)) for c in step.changes], None
        return [Outcome(c, "not landed", tuple(exc.problems)) for c in step.changes], exc.status
    except MetasyncError as exc:
        return [Outcome(c, "not landed", tuple(exc.problems)) for c in step.changes], None
    return [Outcome(c, "landed") for c in step.changes], None


def _payload(change: Change, mark: str | None) -> dict[str, Any]:
    if change.action == "delete":
        return {}
    assert change.desired is not None, change.title
    kind = KINDS[change.kind]
    payload = dict(change.desired)
    if mark is not None and kind.owned_by == "ownerApp":
        # the ownership mark (README: Safe apply), with the fingerprint of what was written: a
        # live object whose fingerprint no longer matches it was edited on the server since
        payload["ownerApp"] = stamp(mark, change.desired_fingerprint)
    if change.action == "update" and change.live is not None:
        payload |= {k: change.live[k] for k in kind.keep_on_update if change.live.get(k)}
    return payload


def _run(step: Step, writer: LiveWriter, mark: str | None) -> None:
    if step.action == "delete":
        (change,) = step.changes
        writer.delete(step.kind, change.name, change.version)
        return
    payloads = [_payload(c, mark) for c in step.changes]
    if step.action == "create":
        writer.create(step.kind, payloads)
    else:
        writer.update(step.kind, payloads)
