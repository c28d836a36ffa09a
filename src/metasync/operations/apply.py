"""`metasync apply`: a plan's changes written in order, before-images first, then read back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from metasync.apply.backup import Backup
from metasync.apply.backup import folder as backup_folder
from metasync.apply.backup import save as save_backup
from metasync.apply.executor import execute
from metasync.apply.steps import Step, steps_for
from metasync.conductor.client import ConductorClient
from metasync.conductor.live import LiveState, ledger_name, ledger_spec, read_live
from metasync.errors import MetasyncError, Problem, ServerError, ValidationFailed
from metasync.manifests.gitref import head_commit
from metasync.model.kinds import KINDS
from metasync.model.resource import Resource
from metasync.operations.plan import Planned, mask_problem
from metasync.plan.model import Change, Outcome
from metasync.plan.planner import build_plan
from metasync.project import Project


def apply(project: Project, planned: Planned, on_step: Callable[[Step], None] | None = None, *,
          force: bool = False, restores: Backup | None = None) -> Applied:  # fmt: skip
    """Write the plan's changes in order, then read back: every applied object must be a noop
    (a delete: gone).

    A plan with refusals (prune guards) writes nothing. Blocked changes (protected, running
    executions, still referenced) are not carried out without ``force``; they are reported
    not landed, with why. The read-back also settles the outcomes left unknown (a write whose
    answer was lost): the object now matches git (landed) or does not (not landed).
    """
    plan = planned.plan
    if plan.refusals:
        raise ValidationFailed(plan.refusals)
    env = plan.environment
    held = [
        Outcome(c, "not landed", (Problem(
            f"kept: {c.blocked}", hint=f"Pass --force to {c.action} it all the same.",
        ),))
        for c in plan.pending
        if c.blocked is not None and not force
    ]  # fmt: skip
    steps = steps_for(plan, force)
    backup = None
    if steps:
        backup = save_backup(
            backup_folder(project.root, env), env, plan.server,
            [c for step in steps for c in step.changes], mask=planned.secrets.mask,
            templates={r.key: r.spec for r in planned.desired.resources},
            commit=_head_or_none(project.root),
            restores=restores.path.name if restores else None,
        )  # fmt: skip
    with project.connect(env) as client:
        mark = None if restores else project.mark  # a rollback writes the images as they were
        outcomes = [
            Outcome(o.change, o.status, tuple(mask_problem(p, planned.secrets) for p in o.problems))
            for o in execute(steps, client, on_step, mark)
        ]
        ledger = _record_ledger(project, client, planned.live, outcomes)
        try:
            live = read_live(client)
        except ServerError as exc:
            problem = mask_problem(exc.problem, planned.secrets)
            return Applied((*outcomes, *held), (), problem, backup, ledger)
    # what was sent (new versions at their new number), secrets resolved: masked again below
    resources = [
        Resource(o.change.kind, o.change.name, o.change.version, o.change.desired)
        for o in outcomes
        if o.status != "not landed" and o.change.desired is not None
    ]
    after = {c.key: c for c in build_plan(env, resources, live, secrets=planned.secrets).changes}
    for o in outcomes:  # deletes: landed when gone
        if o.change.action == "delete":
            gone = o.change.key not in live.objects
            after[o.change.key] = replace(o.change, action="noop" if gone else "delete")
    settled = tuple(_settle(o, after.get(o.change.key)) for o in outcomes)
    drifted = tuple(
        after[o.change.key]
        for o in settled
        if o.status == "landed" and after[o.change.key].action != "noop"
    )
    return Applied((*settled, *held), drifted, backup=backup, ledger_failed=ledger)


def _record_ledger(project: Project, client: ConductorClient, live: LiveState,
                   outcomes: Sequence[Outcome]) -> Problem | None:  # fmt: skip
    """Keep the ledger of what this project wrote of the kinds with no field for an owner (event
    handlers, schedules): what prune may delete."""
    before = live.ledger(project.mark)
    after = {key: dict(names) for key, names in before.items()}
    for o in outcomes:
        kind = KINDS[o.change.kind]
        if kind.owned_by != "ledger" or o.status == "not landed":
            continue
        names = after.setdefault(kind.ledger_key, {})
        if o.change.action == "delete":
            names.pop(o.change.name, None)
        else:
            names[o.change.name] = o.change.desired_fingerprint
    if after == before:
        return None
    try:
        client.update_workflows([ledger_spec(project.mark, after)])
    except ServerError as exc:
        kinds = " and ".join(k.name for k in KINDS.values() if k.owned_by == "ledger")
        return Problem(
            f"the ledger of what this project wrote ({ledger_name(project.mark)}) was not "
            f"updated: {exc.problem.message}",
            hint=f"Apply again: until then prune does not know which {kinds} objects are "
            "metasync's.",
            severity="warning",
        )
    return None


@dataclass(frozen=True)
class Applied:
    outcomes: tuple[Outcome, ...]
    #: objects written that still do not plan as noop on read-back
    read_back: tuple[Change, ...]
    #: why the read-back could not run (the outcomes are then as the writes reported them)
    read_back_failed: Problem | None = None
    #: the before-images saved before the first write (None: nothing was written)
    backup: Path | None = None
    #: the event-handler ledger could not be written
    ledger_failed: Problem | None = None

    @property
    def ok(self) -> bool:
        return all(o.status == "landed" for o in self.outcomes) and not self.read_back


def _settle(outcome: Outcome, after: Change | None) -> Outcome:
    """An unknown outcome becomes landed or not landed by what the server now holds."""
    if outcome.status != "unknown" or after is None:
        return outcome
    if after.action == "noop":
        note = Problem("the answer was lost, but the read-back shows it landed", severity="warning")
        return Outcome(outcome.change, "landed", (note,))
    return Outcome(outcome.change, "not landed", outcome.problems)


def _head_or_none(root: Path) -> str | None:
    try:
        return head_commit(root)
    except MetasyncError:
        return None
