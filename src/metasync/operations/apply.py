"""`metasync apply`: a plan's changes written in order, before-images first, then read back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from metasync.apply import history
from metasync.apply.backup import folder as backup_folder
from metasync.apply.backup import images
from metasync.apply.backup import save as save_backup
from metasync.apply.executor import Interrupted, execute
from metasync.apply.lease import Lease
from metasync.apply.lock import whoami
from metasync.apply.steps import Step, steps_for
from metasync.conductor.client import ConductorClient
from metasync.conductor.live import LiveState, ledger_name, ledger_spec, read_live
from metasync.errors import MetasyncError, Problem, ServerError, ValidationFailed
from metasync.manifests.gitref import head_commit
from metasync.model.fingerprint import fingerprint
from metasync.model.kinds import KINDS
from metasync.model.resource import Resource
from metasync.operations.plan import Planned, mask_problem
from metasync.plan.memo import text_digest
from metasync.plan.model import Change, Outcome
from metasync.plan.planner import build_plan
from metasync.project import Project


@dataclass(frozen=True)
class Restoring:
    """What a rollback restores: a revision's state, or a backup file's before-images."""

    label: str
    rollback_to: int | None = None
    restores_file: str | None = None


def apply(project: Project, planned: Planned, on_step: Callable[[Step], None] | None = None, *,
          force: bool = False, restoring: Restoring | None = None) -> Applied:  # fmt: skip
    """Write the plan's changes in order, then read back: every applied object must be a noop
    (a delete: gone). The run is a revision of the environment's history, recorded on its server
    with the before-images before the first write (and a copy kept locally).

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
    backup = revision = None
    with project.connect(env) as client:
        if steps:
            revision, backup = _record(project, client, planned, steps, restoring)
        mark = None if restoring else project.mark  # a rollback writes the images as they were
        try:
            executed = execute(steps, client, on_step, mark)
        except Interrupted as stop:  # Ctrl-C: record what landed, then stop (no read-back)
            outcomes = _masked(stop.outcomes, planned)
            ledger = _record_ledger(project, client, planned.live, outcomes)
            done = Applied((*outcomes, *held), (), backup=backup, ledger_failed=ledger,
                           revision=revision, interrupted=True)  # fmt: skip
            raise ApplyInterrupted(env, _finish(client, project, env, done)) from None
        outcomes = _masked(executed, planned)
        ledger = _record_ledger(project, client, planned.live, outcomes)
        try:  # what was written, at the versions written (deletes too: gone or not)
            written = frozenset(
                (name, version)
                for kind, name, version in (o.change.key for o in outcomes)
                if kind == "WorkflowDef" and version is not None
            )  # exactly those: the server's index of names and versions is not read
            live = read_live(client, written, text_digest(planned.secrets.values.values()))
        except ServerError as exc:
            problem = mask_problem(exc.problem, planned.secrets)
            done = Applied((*outcomes, *held), (), problem, backup, ledger, revision)
        else:
            settled, drifted = _read_back(env, outcomes, live, planned)
            if planned.memo is not None:  # what was written, known to the next plan
                project.keep_fingerprints(env, planned.memo)
            done = Applied((*settled, *held), drifted, backup=backup, ledger_failed=ledger,
                           revision=revision)  # fmt: skip
        return _finish(client, project, env, done)


class ApplyInterrupted(Exception):
    """Ctrl-C stopped an apply: what it did before (recorded in its revision, the lock still to be
    released by whoever holds it)."""

    def __init__(self, env: str, applied: Applied):
        super().__init__(f"the apply to {env} was interrupted")
        self.env = env
        self.applied = applied
        self.lease: Lease | None = None  # the lock it ran under (operations/lock.py sets it)


def _masked(outcomes: Sequence[Outcome], planned: Planned) -> list[Outcome]:
    return [
        Outcome(o.change, o.status, tuple(mask_problem(p, planned.secrets) for p in o.problems))
        for o in outcomes
    ]


def _read_back(env: str, outcomes: Sequence[Outcome], live: LiveState,
               planned: Planned) -> tuple[tuple[Outcome, ...], tuple[Change, ...]]:  # fmt: skip
    """The outcomes settled by what the server now holds, and what landed but still differs."""
    # what was sent (new versions at their new number), secrets resolved: masked again below
    resources = [
        Resource(o.change.kind, o.change.name, o.change.version, o.change.desired)
        for o in outcomes
        if o.status not in ("not landed", "not applied") and o.change.desired is not None
    ]
    # a spec sent as git rendered it has the render's facts: its fingerprint, found by the plan,
    # is known (the memo); the server's side, new, is worked out and kept for the next plan
    rendered = {r.key: r for r in planned.desired.resources}

    def facts(resource: Resource) -> tuple[frozenset[str], bytes | None] | None:
        original = rendered.get(resource.key)
        if original is None or original.spec is not resource.spec:
            return None
        return planned.desired.fact(original)

    after = {
        c.key: c
        for c in build_plan(
            env, resources, live, secrets=planned.secrets, ignore=planned.ignore,
            memo=planned.memo, facts=facts, detail=False,
        ).changes
    }  # fmt: skip
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
    return settled, drifted


def _record(project: Project, client: ConductorClient, planned: Planned, steps: Sequence[Step],
            restoring: Restoring | None) -> tuple[history.Revision, Path]:  # fmt: skip
    """The run as the next revision of the environment's history, with the before-images of
    what it touches: on the server first (nothing is written when it cannot be kept), then the
    local copy."""
    env, changes = planned.plan.environment, [c for step in steps for c in step.changes]
    befores = images(changes, mask=planned.secrets.mask,
                     templates={r.key: r.spec for r in planned.desired.resources})  # fmt: skip
    plan = [
        [c.kind, c.name, c.version, c.action, c.live_fingerprint, c.desired_fingerprint]
        for c in changes
    ]
    started = history.Revision(
        0,
        "rollback" if restoring else "apply",
        history.now(),
        whoami(),
        _head_or_none(project.root),
        fingerprint(plan),
        len(changes),
        rollback_to=restoring.rollback_to if restoring else None,
        restores_file=restoring.restores_file if restoring else None,
    )
    name = project.history_name(env)
    try:
        revision = history.begin(client, name, started, befores)
    except ServerError as exc:
        raise ServerError(
            f"the history of {env} could not be recorded ({name}): "
            f"{mask_problem(exc.problem, planned.secrets).message}; nothing was applied",
            location=exc.problem.location, status=exc.status,
            hint="Apply again once the server takes writes.",
        ) from None  # fmt: skip
    try:
        backup = save_backup(
            backup_folder(project.root, env), env, planned.plan.server, befores,
            commit=revision.commit, restores=restoring.restores_file if restoring else None,
            revision=revision.number, created=revision.started,
        )  # fmt: skip
    except MetasyncError:
        history.finish(client, name, revision, "not landed")
        raise
    return revision, backup


def _finish(client: ConductorClient, project: Project, env: str, done: Applied) -> Applied:
    """Record the run's result in its revision; a failure to is a warning, never a failure of
    what landed."""
    if done.revision is None:
        return done
    try:
        if done.interrupted:
            landed = sum(o.status == "landed" for o in done.outcomes)
            ended = history.finish(client, project.history_name(env), done.revision,
                                   "interrupted", landed)  # fmt: skip
        else:
            ended = history.finish(client, project.history_name(env), done.revision,
                                   "landed" if done.ok else "not landed")  # fmt: skip
    except MetasyncError as exc:
        return replace(done, history_failed=Problem(
            f"revision {done.revision.number} of {env} was not updated with its result: "
            f"{exc.problem.message}", hint="`metasync history` lists it as started.",
            severity="warning", rule="history-not-recorded",
        ))  # fmt: skip
    return replace(done, revision=ended)


def _record_ledger(project: Project, client: ConductorClient, live: LiveState,
                   outcomes: Sequence[Outcome]) -> Problem | None:  # fmt: skip
    """Keep the ledger of what this project wrote of the kinds with no field for an owner (event
    handlers, schedules): what prune may delete."""
    before = live.ledger(project.mark)
    after = {key: dict(names) for key, names in before.items()}
    for o in outcomes:
        kind = KINDS[o.change.kind]
        if kind.owned_by != "ledger" or o.status in ("not landed", "not applied"):
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
            rule="ledger-not-updated",
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
    #: the revision of the environment's history this run is (None: nothing was written)
    revision: history.Revision | None = None
    #: the revision's result could not be recorded
    history_failed: Problem | None = None
    #: Ctrl-C stopped it: the changes after the one being sent are not applied
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return all(o.status == "landed" for o in self.outcomes) and not self.read_back


def _settle(outcome: Outcome, after: Change | None) -> Outcome:
    """An unknown outcome becomes landed or not landed by what the server now holds."""
    if outcome.status != "unknown" or after is None:
        return outcome
    if after.action == "noop":
        note = Problem("the answer was lost, but the read-back shows it landed",
                       severity="warning", rule="answer-lost")  # fmt: skip
        return Outcome(outcome.change, "landed", (note,))
    return Outcome(outcome.change, "not landed", outcome.problems)


def _head_or_none(root: Path) -> str | None:
    try:
        return head_commit(root)
    except MetasyncError:
        return None
