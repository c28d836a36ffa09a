"""metasync's task types: what a worker does with each task it polls.

A task names a repository, a commit (its full id) and, for most types, an environment; it runs in
the worker's tree of that commit (``worker/checkouts.py``), never in a shared working tree, and
returns the same formatVersion 1 document as the command's ``-o json`` (secrets masked as
everywhere else):

* ``metasync_drift``: ``drift -o json`` of the environment;
* ``metasync_sync``: the drift, then, when the environment's ``policy.autoSync`` is true and its
  server differs from git, an apply under the environment's apply lock (what landed: ``applied``);
* ``metasync_plan``: the plan as ``plan --out`` saves it (no secret values), for metasync_apply;
* ``metasync_apply``: a saved plan (input ``plan``) applied as ``apply PLAN`` does: nothing when the
  environment's desired state or a reviewed object moved since (``withheld``);
* ``metasync_test``: ``test -o json`` of the environment;
* ``metasync_export``: the manifests ``export`` writes of the environment's server, by file name;
* ``metasync_environments``: the project's environments (or those asked) as FORK_JOIN_DYNAMIC's
  tasks, one drift (or sync) task each;
* ``metasync_report``: the reconcile's status matrix from its environments' results, and the
  notifications for drift and failures.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metasync import operations as op
from metasync.apply.lock import Locked
from metasync.errors import ConfigError, Location, MetasyncError, redact_url
from metasync.manifests.environment import load_environment
from metasync.notify import send as send_notifications
from metasync.operations.saved_plan import saved_document
from metasync.plan.drift import DRIFT_TYPES
from metasync.project import Project
from metasync.render.apply_result import apply_document
from metasync.render.drift import drift_document
from metasync.render.reconcile import reconcile_document, reconcile_message
from metasync.render.test_report import test_document
from metasync.worker.checkouts import Checkouts

#: the task types, by what they do
DRIFT = "metasync_drift"
SYNC = "metasync_sync"
PLAN = "metasync_plan"
APPLY = "metasync_apply"
TEST = "metasync_test"
EXPORT = "metasync_export"
ENVIRONMENTS = "metasync_environments"
REPORT = "metasync_report"

INPUT = "task input"
#: what all of a reconcile's environments may return together (bytes of JSON): the join holds
#: every one of them, and Conductor keeps a task's output inline up to 3 MB by default
#: (taskOutputPayloadSizeThreshold; beyond it, external payload storage or a failed task)
RECONCILE_BUDGET = 2_000_000
#: what one environment may return in a reconcile, at the least
ENVIRONMENT_BUDGET_MIN = 2_048


@dataclass(frozen=True)
class Job:
    """What a task asks: the project at ``commit`` of ``repository`` (in its folder ``path``),
    for ``environment`` (the task types that take one) or ``only`` these environments (none:
    all of them); ``given`` is the task's whole input."""

    repository: str
    commit: str
    environment: str = ""
    path: str = "."
    only: tuple[str, ...] = ()
    given: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, given: Mapping[str, Any], *, environment: bool, ref: bool = False) -> Job:
        needed = ["repository", "commit"] + (["environment"] if environment else [])
        missing = [k for k in needed if not given.get(k)]
        if ref and missing == ["commit"] and given.get("ref"):
            missing = []  # the environments task resolves a branch or tag to its commit
        if missing:
            raise ConfigError(
                f"the task's input has no {', '.join(missing)}",
                location=Location(INPUT, None, missing[0]),
                hint=f"Give {', '.join(needed)}: a URL git can fetch, a full commit id"
                + (" (or ref: a branch or tag)" if ref else "")
                + (", an environment's name." if environment else "."),
            )
        path = str(given.get("path") or ".")
        if path.startswith("/") or ".." in Path(path).parts:
            raise ConfigError(
                f"path {path!r} leaves the repository",
                location=Location(INPUT, None, "path"),
                hint="Give the project's folder relative to the repository's root.",
            )
        only = given.get("environments") or ()
        if isinstance(only, str):
            only = [e.strip() for e in only.split(",") if e.strip()]
        if not isinstance(only, (list, tuple)) or not all(isinstance(e, str) for e in only):
            raise ConfigError(
                "environments must be a list of names (or one string, comma-separated)",
                location=Location(INPUT, None, "environments"),
                hint="Leave it out for every environment of the project.",
            )
        return cls(str(given["repository"]), str(given.get("commit") or ""),
                   str(given.get("environment") or ""), path, tuple(only), given)  # fmt: skip


class Unsuccessful(MetasyncError):
    """The task was carried out and did not do what it is for (an apply withheld as stale, a
    change not landed): the task fails for good, its document as its output."""

    def __init__(self, message: str, document: dict[str, Any], hint: str) -> None:
        super().__init__(message, hint=hint)
        self.document = document


@dataclass(frozen=True)
class Context:
    """What every task of a worker shares: its checkouts, and the webhooks it tells about each
    reconcile's drift and failures (``--notify``)."""

    checkouts: Checkouts
    notify: tuple[str, ...] = ()


def _environments_of(project: Project, job: Job, asked: Sequence[str]) -> list[str]:
    """``asked``, each an environment of ``project`` (else a terminal error)."""
    unknown = [name for name in asked if name not in project.environments]
    if unknown:
        raise ConfigError(
            f"the project at {job.commit[:12]} has no environment {', '.join(map(repr, unknown))}",
            location=Location(INPUT, None, "environment" if job.environment else "environments"),
            hint=f"It has: {', '.join(project.environments) or 'none'}.",
        )
    return list(asked)


def _project(tree: Path, job: Job) -> Project:
    project = Project(tree / job.path)
    if job.environment:
        _environments_of(project, job, [job.environment])
    return project


def _stamped(document: Mapping[str, Any], job: Job) -> dict[str, Any]:
    return {**document, "commit": job.commit, "environment": job.environment}


def drift_task(ctx: Context, job: Job) -> dict[str, Any]:
    """The drift of ``job``'s environment: ``metasync drift -o json``'s document (with input
    ``budget``, abridged to fit it: :func:`abridge`)."""
    with ctx.checkouts.at(job.repository, job.commit) as tree:
        reports = op.drift.drift(_project(tree, job), [job.environment])
    return abridge(_stamped(drift_document(reports), job), _budget(job))


def _budget(job: Job) -> int | None:
    given = job.given.get("budget")
    if given is None:
        return None
    if isinstance(given, bool) or not isinstance(given, int) or given < 1:
        raise ConfigError(f"budget must be a positive number of bytes, not {given!r}",
                          location=Location(INPUT, None, "budget"))  # fmt: skip
    return max(given, ENVIRONMENT_BUDGET_MIN)


def abridge(document: dict[str, Any], budget: int | None) -> dict[str, Any]:
    """``document`` (a drift document, perhaps with ``applied``) in at most ``budget`` bytes of
    JSON: first without the fields' values, then without the fields and last writes, then
    with the first objects only. An abridged document says so (``abridged``: what was left
    out, and each environment's ``counts`` by drift type, of every object)."""
    if budget is None or _size(document) <= budget:
        return document
    reports = document["environments"]
    for report in reports:
        report["counts"] = {t: sum(d["type"] == t for d in report["drift"]) for t in DRIFT_TYPES}
    steps: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        ("fieldValues", _paths_only),
        ("fields", _bare),
    ]
    left_out: dict[str, Any] = {}
    for name, step in steps:
        for report in reports:
            for item in report["drift"]:
                step(item)
        left_out[name] = True
        if _size(document) <= budget:
            break
    else:
        applied = document.get("applied")
        if applied and applied.get("outcomes"):  # its counts stay; the list goes
            left_out["appliedOutcomes"] = len(applied["outcomes"])
            applied["outcomes"] = []
        dropped = 0
        while _size(document) > budget and any(r["drift"] for r in reports):
            longest = max(reports, key=lambda r: len(r["drift"]))
            cut = max(1, len(longest["drift"]) // 4)
            del longest["drift"][-cut:]
            dropped += cut
        left_out["objects"] = dropped
    document["abridged"] = {
        **left_out,
        "why": f"this environment's share of the reconcile's output is {budget} bytes",
        "full": f"metasync drift --env {document.get('environment')} -o json at "
        f"{str(document.get('commit'))[:12]}, or a metasync_drift task without budget",
    }
    return document


def _paths_only(item: dict[str, Any]) -> None:
    item["fields"] = [{"path": f["path"]} for f in item.get("fields", [])]


def _bare(item: dict[str, Any]) -> None:
    item.pop("fields", None)
    item.pop("lastWrite", None)


def _size(document: Mapping[str, Any]) -> int:
    return len(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())


def sync_task(ctx: Context, job: Job) -> dict[str, Any]:
    """The drift of ``job``'s environment; then, when its policy says autoSync and its server
    differs from git, the apply that makes it match (``applied``; null when nothing was)."""
    with ctx.checkouts.at(job.repository, job.commit) as tree:
        project = _project(tree, job)
        env = job.environment
        (report,) = op.drift.drift(project, [env])
        applied = None
        policy = load_environment(project.root, env, connect=False).config.policy
        auto = policy.autoSync
        # what an apply changes: everything but an object git does not name (unless pruned)
        fixable = [d for d in report.drift if d.type != "unmanaged-live" or policy.prune]
        if auto and report.error is None and fixable:
            applied = _apply_when_free(project, env)
    document = {**_stamped(drift_document([report]), job), "autoSync": auto, "applied": applied}
    return abridge(document, _budget(job))


#: how long a sync waits for another run's apply lock on its environment, and how often it looks
LOCK_WAIT_S = 60.0
LOCK_LOOK_S = 2.0


def _apply_when_free(project: Project, env: str) -> dict[str, Any] | None:
    """Plan and apply ``env`` under its apply lock, waiting up to LOCK_WAIT_S for another run to
    release it (then Locked, and the task is retried). Waited for here, not by a failed task's
    retry: a reconcile's join may take a failed attempt for the environment's result before
    Conductor has scheduled the retry (seen on conductor-oss)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            with op.lock.locked(project, env, "reconcile") as lease:
                planned = op.plan.plan(project, env)
                if not planned.plan.has_changes:
                    return None
                done = op.apply.apply(project, planned)
                applied = apply_document(env, planned.plan.server, done.outcomes)
        except Locked:
            if time.monotonic() + LOCK_LOOK_S > deadline:
                raise
            time.sleep(LOCK_LOOK_S)
            continue
        if lease.problems:
            applied["lock"] = [p.message for p in lease.problems]
        return applied


def plan_task(ctx: Context, job: Job) -> dict[str, Any]:
    """The environment's plan as ``plan --out`` saves it: metasync_apply's input ``plan``."""
    with ctx.checkouts.at(job.repository, job.commit) as tree:
        project = _project(tree, job)
        planned = op.plan.plan(project, job.environment)
        return {**saved_document(project, planned), "environment": job.environment}


def apply_task(ctx: Context, job: Job) -> dict[str, Any]:
    """A saved plan (input ``plan``: metasync_plan's output) applied at the commit: no more than it
    reviewed, nothing at all when the environment or a reviewed object moved since."""
    document = job.given.get("plan")
    if not isinstance(document, Mapping):
        raise ConfigError(
            "the task's input has no plan",
            location=Location(INPUT, None, "plan"),
            hint="Give metasync_plan's output (or the file `metasync plan --out` writes) as plan.",
        )
    with ctx.checkouts.at(job.repository, job.commit) as tree:
        project = _project(tree, job)
        if document.get("environment") != job.environment:
            raise ConfigError(
                f"the plan is for {document.get('environment')!r}, not {job.environment!r}",
                location=Location(INPUT, None, "plan.environment"),
                hint="Give the plan of the environment to apply.",
            )
        result = op.saved_plan.apply_saved_document(project, dict(document), "the saved plan")
    document = apply_document(job.environment, result.saved.server, result.applied.outcomes,
                              refused=result.refused, withheld=result.withheld)  # fmt: skip
    document["commit"] = job.commit
    if result.withheld:
        raise Unsuccessful(
            f"the saved plan is stale in {len(result.refused)} object(s): nothing was applied",
            document, hint="Plan again (metasync_plan), review, and apply that plan.",
        )  # fmt: skip
    if not document["ok"]:
        raise Unsuccessful(
            f"{document['landed']} of {len(document['outcomes'])} change(s) landed",
            document, hint="See each outcome's problems; plan again to see where the server stands.",
        )  # fmt: skip
    return document


def test_task(ctx: Context, job: Job) -> dict[str, Any]:
    """The environment's workflow tests: ``metasync test -o json``'s document."""
    started = time.monotonic()
    with ctx.checkouts.at(job.repository, job.commit) as tree:
        run = op.workflow_tests.run(_project(tree, job), job.environment)
    document = test_document(run.environment, run.server, run.results,
                             time.monotonic() - started)  # fmt: skip
    return {**document, "commit": job.commit}


def export_task(ctx: Context, job: Job) -> dict[str, Any]:
    """What the environment's server holds, as the manifests ``metasync export`` writes (secret
    values as the project's placeholders): ``files``, by path."""
    with ctx.checkouts.at(job.repository, job.commit) as tree:
        project = _project(tree, job)
        with tempfile.TemporaryDirectory(prefix="metasync-export-") as out:
            done = op.export.export(project, [job.environment], Path(out) / "project")
            files = {name: (Path(out) / "project" / name).read_text() for name in done.files}
    return {
        "kind": "metasync-export",
        "formatVersion": 1,
        **_stamped({}, job),
        "files": files,
        "warnings": [p.message for p in done.warnings],
    }


def environments_task(ctx: Context, job: Job) -> dict[str, Any]:
    """The project's environments at the commit (or those asked), with a task of each, as
    FORK_JOIN_DYNAMIC takes them (``dynamicForkTasksParam`` and ``dynamicForkTasksInputParamName``:
    the form both 3.15 and conductor-oss read). Input ``apply`` true: the environments whose
    policy says autoSync get a metasync_sync task (drift, then apply); the others, and every one
    without it, metasync_drift. Each task is optional: one that fails after its retries leaves
    its result (an error) to the report, not the whole run failed."""
    commit = job.commit or ctx.checkouts.resolve(job.repository, str(job.given["ref"]))
    job = Job(job.repository, commit, "", job.path, job.only, job.given)
    apply = job.given.get("apply") in (True, "true")
    with ctx.checkouts.at(job.repository, job.commit) as tree:
        project = Project(tree / job.path)
        names = _environments_of(project, job, job.only or project.environments)
        auto = {
            name: apply
            and load_environment(project.root, name, connect=False).config.policy.autoSync
            for name in names
        }
    tasks = {name: (SYNC, f"sync_{name}") if auto[name] else (DRIFT, f"drift_{name}")
             for name in names}  # fmt: skip
    return {
        "commit": commit,
        "environments": names,
        "dynamicTasks": [
            {"name": kind, "taskReferenceName": ref, "type": "SIMPLE", "optional": True}
            for kind, ref in tasks.values()
        ],
        "dynamicTasksInput": {
            ref: {
                "repository": job.repository,
                "commit": commit,
                "path": job.path,
                "environment": name,
                "budget": max(ENVIRONMENT_BUDGET_MIN, RECONCILE_BUDGET // max(1, len(names))),
            }
            for name, (_, ref) in tasks.items()
        },
    }


def report_task(ctx: Context, job: Job) -> dict[str, Any]:
    """The reconcile's status matrix (environment x resource) from its environments' results
    (input ``results``: the join's output), and a notification when anything drifted, failed or
    was applied: to the worker's webhooks (every environment) and each environment's own."""
    results = job.given.get("results") or {}
    if not isinstance(results, Mapping):
        raise ConfigError("results must be the join's output: an object by task reference",
                          location=Location(INPUT, None, "results"))  # fmt: skip
    document = reconcile_document(redact_url(job.repository), job.commit, job.only, results)
    told = []
    if any(e["state"] != "in-sync" for e in document["environments"]):
        told = send_notifications(ctx.notify, reconcile_message(document))
        with ctx.checkouts.at(job.repository, job.commit) as tree:
            project = Project(tree / job.path)
            for column in document["environments"]:
                if column["state"] != "in-sync":
                    told += send_notifications(_webhooks(project, column["environment"]),
                                               reconcile_message(document, column["environment"]))  # fmt: skip
    document["notificationsFailed"] = [p.message for p in told]
    return document


def _webhooks(project: Project, env: str) -> list[str]:
    try:
        return project.webhooks(env)
    except MetasyncError:
        return []  # an environment.yaml that cannot be read is the environment's own error


#: task type -> (whether it takes one environment, what it does)
HANDLERS: dict[str, tuple[bool, Callable[[Context, Job], dict[str, Any]]]] = {
    ENVIRONMENTS: (False, environments_task),
    DRIFT: (True, drift_task),
    SYNC: (True, sync_task),
    PLAN: (True, plan_task),
    APPLY: (True, apply_task),
    TEST: (True, test_task),
    EXPORT: (True, export_task),
    REPORT: (False, report_task),
}
