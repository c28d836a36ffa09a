"""`metasync control install|start`: metasync's own definitions on a control-plane Conductor,
and a reconcile run of them."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from metasync import operations as op
from metasync.cli import cli
from metasync.cli.boundary import EXIT_CHANGES, EXIT_OK, EXIT_USER_ERROR
from metasync.cli.strict import StrictCommand
from metasync.conductor.client import ConductorClient
from metasync.errors import MetasyncError, ServerError, redact_url
from metasync.model.flavour import flavour_of
from metasync.project import Project
from metasync.render.apply_result import write_apply_result
from metasync.render.plan_text import write_plan_text
from metasync.render.problems import write_problems
from metasync.render.reconcile import write_reconcile_text
from metasync.worker.checkouts import COMMIT_ID
from metasync.worker.control import (
    CORRELATION,
    ENVIRONMENT,
    WORKFLOW,
    Schedule,
    control_project,
    start_request,
)

F = TypeVar("F", bound=Callable[..., Any])


def _run_options(prefix: str) -> Callable[[F], F]:
    """What a reconcile run is of: a run started now, or each run of a schedule (``prefix``)."""

    def said(text: str) -> str:
        return prefix + (text[0].lower() + text[1:] if prefix else text)

    options = [
        click.option("--path", "project_path", default=".", show_default=True,
                     help=said("The project's folder in the repository.")),
        click.option("--env", "envs", multiple=True, metavar="ENV",
                     help=said("These environments only (repeatable; default: all).")),
        click.option("--apply", "apply", is_flag=True,
                     help=said("Apply the environments whose policy says autoSync (self-heal); "
                               "the others are only reported.")),
        click.option("--domain", metavar="D",
                     help=said("The run's tasks go to the workers of this domain (worker "
                               "--domain).")),
    ]  # fmt: skip

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


class _Group(click.Group):
    command_class = StrictCommand  # its commands take the shared options, as the others do


@cli.group(cls=_Group)
def control() -> None:
    """The control plane: a Conductor that runs metasync's workers."""


@control.command()
@click.option("--control", "url", required=True, metavar="URL",
              help="The control-plane Conductor (its URL, without /api).")  # fmt: skip
@click.option("--owner-email", default="metasync@example.com", show_default=True,
              help="ownerEmail of the definitions (Conductor 3.15 requires one).")  # fmt: skip
@click.option("--response-timeout", type=click.IntRange(min=1), default=300, show_default=True,
              metavar="SECONDS",
              help="How long a worker may hold a drift task without answering before it is "
              "given to another (one that died mid-task).")  # fmt: skip
@click.option("--parallelism", type=click.IntRange(min=1), default=None, metavar="N",
              help="At most N tasks of each type that reads or writes a target run at once, "
              "across every worker (the task types' concurrentExecLimit; default: no limit).")  # fmt: skip
@click.option("--schedule", "cron", metavar="CRON",
              help="Also a schedule of the reconcile on this cron (six fields: second minute "
              "hour day-of-month month day-of-week; conductor-oss 3.32+ and Orkes).")  # fmt: skip
@click.option("--repository", metavar="URL", help="--schedule: the repository to reconcile.")
@click.option("--ref", default="main", show_default=True,
              help="--schedule: the branch or tag, resolved to its commit at each run.")  # fmt: skip
@_run_options("--schedule: ")
@click.option("--schedule-name", metavar="NAME",
              help="--schedule: the schedule's name (default: metasync_reconcile_<repository>_"
              "<hash>).")  # fmt: skip
def install(*, url: str, owner_email: str, response_timeout: int, parallelism: int | None,
            cron: str | None, repository: str | None, ref: str, project_path: str,
            envs: tuple[str, ...], apply: bool, domain: str | None,
            schedule_name: str | None) -> int:  # fmt: skip
    """Write the task types `metasync worker` polls and the metasync_reconcile workflow (and, with
    --schedule, a schedule of it).

    Applied by metasync as a project of its own (metasync-control): shown as a plan, then
    applied; again, it changes nothing; it deletes nothing.
    """
    schedule = _schedule(cron, repository, ref=ref, path=project_path, envs=envs, apply=apply,
                         name=schedule_name, domain=domain)  # fmt: skip
    made = control_project(url, owner_email=owner_email, response_timeout=response_timeout,
                           parallelism=parallelism, schedule=schedule)  # fmt: skip
    with made as project:
        if schedule is not None:
            _has_scheduler(project, url)
        return _install(project, schedule)


def _has_scheduler(project: Project, url: str) -> None:
    with project.connect(ENVIRONMENT) as client:
        version = client.server_version()
    if flavour_of(version) == "3.15":
        raise MetasyncError(
            f"the control plane ({redact_url(url)}, Conductor {version or '3.x'}) has no "
            "scheduler: --schedule needs conductor-oss 3.32+ or Orkes",
            hint="Install without --schedule, and start the reconcile from any cron, e.g. "
            "`*/10 * * * * metasync control start --control URL --repository URL --ref main`.",
        )


def _install(project: Project, schedule: Schedule | None) -> int:
    with op.lock.locked(project, ENVIRONMENT, "apply"):
        planned = op.plan.plan(project, ENVIRONMENT)
        write_problems(sys.stderr, planned.warnings)
        write_plan_text(sys.stdout, planned.plan)
        if not planned.plan.has_changes:
            click.echo("Nothing to install: the control plane has these definitions.")
            return EXIT_OK
        applied = op.apply.apply(project, planned)
    write_apply_result(sys.stdout, applied.outcomes, applied.read_back,
                       read_back_failed=applied.read_back_failed)  # fmt: skip
    if not applied.ok:
        return EXIT_USER_ERROR
    click.echo("Next: run `metasync worker --control URL` (one or more), then "
               "`metasync control start --control URL --repository URL --ref main`"
               + (" (or wait for the schedule)." if schedule else "."))  # fmt: skip
    return EXIT_OK


def _schedule(cron: str | None, repository: str | None, *, ref: str, path: str,
              envs: tuple[str, ...], apply: bool, name: str | None,
              domain: str | None) -> Schedule | None:  # fmt: skip
    if cron is None:
        given = [o for o, v in (("--repository", repository), ("--env", envs), ("--apply", apply),
                                ("--schedule-name", name), ("--domain", domain)) if v]  # fmt: skip
        if given:
            raise MetasyncError(f"{given[0]} is for --schedule",
                                hint="Add --schedule CRON, or leave it out.")  # fmt: skip
        return None
    if not repository:
        raise MetasyncError("--schedule needs --repository URL: the repository to reconcile",
                            hint="Run e.g. `metasync control install --control URL --schedule "
                            "'0 */10 * * * *' --repository https://git.example.com/fleet.git`.")  # fmt: skip
    _no_password(repository)
    return Schedule(cron, repository, ref, path, envs, apply, name, domain)


def _no_password(repository: str) -> None:
    if redact_url(repository) != repository:
        raise MetasyncError(
            "the repository URL holds credentials: the control plane would keep them in its "
            "workflow inputs and show them to anyone who can read executions",
            hint="Give the URL without them, and the workers a way to read it (a git credential "
            "helper, an SSH key, a token in their environment).",
        )


@control.command()
@click.option("--control", "url", required=True, metavar="URL",
              help="The control-plane Conductor (its URL, without /api).")  # fmt: skip
@click.option("--repository", required=True, metavar="URL",
              help="The repository of the project, as the workers can fetch it.")  # fmt: skip
@click.option("--commit", metavar="SHA", help="A full commit id to reconcile (or --ref).")
@click.option("--ref", metavar="REF",
              help="A branch or tag, resolved to its commit by the run (default: main).")  # fmt: skip
@_run_options("")
@click.option("--wait", "wait", type=click.IntRange(min=1), default=None, metavar="SECONDS",
              help="Wait up to SECONDS for the run, then show its status matrix (exit 2 when an "
              "environment drifted, 1 when one failed).")  # fmt: skip
def start(*, url: str, repository: str, commit: str | None, ref: str | None, project_path: str,
          envs: tuple[str, ...], apply: bool, domain: str | None,
          wait: int | None) -> int:  # fmt: skip
    """Start one metasync_reconcile run: what any cron can run where the control plane has no
    scheduler (Conductor 3.15). Prints the run's id.
    """
    if commit and ref:
        raise MetasyncError("give --commit or --ref, not both",
                            hint="--commit for a reviewed commit; --ref for a branch's head.")  # fmt: skip
    if commit and not COMMIT_ID.fullmatch(commit.lower()):
        raise MetasyncError(f"--commit {commit!r} is not a full commit id",
                            hint="Give the 40-hex-digit id (`git rev-parse <ref>`), or --ref "
                            "for a branch or tag.")  # fmt: skip
    _no_password(repository)
    request = start_request(repository, commit=commit, ref=None if commit else ref or "main",
                            path=project_path, environments=envs, apply=apply,
                            domain=domain)  # fmt: skip
    with ConductorClient.connect(url, label=f"the control plane ({redact_url(url)})") as client:
        workflow_id = client.start_workflow(request)
        click.echo(workflow_id)
        if wait is None:
            return EXIT_OK
        deadline = time.monotonic() + wait
        while True:
            execution = client.execution(workflow_id, tasks=False) or {}
            if execution.get("status") not in (None, "RUNNING", "PAUSED"):
                break
            if time.monotonic() > deadline:
                raise MetasyncError(
                    f"the reconcile {workflow_id} is still running after {wait} s",
                    hint=f"See it later: `metasync status --control {redact_url(url)} "
                    f"--workflow {workflow_id}`.",
                )
            time.sleep(0.5)
    return show_reconcile(execution)


def show_reconcile(execution: dict[str, Any], fmt: str = "text") -> int:
    """A reconcile run's status matrix; the exit code: 0 in sync (or applied), 2 drift, 1 a
    failure (of an environment, or of the run)."""
    status = execution.get("status")
    document = (execution.get("output") or {}).get("status")
    if status in ("RUNNING", "PAUSED"):
        raise MetasyncError(
            f"the reconcile {execution.get('workflowId')} is still {status.lower()}: its status "
            "matrix is made when every environment has its result",
            hint="Ask again when it has ended (the Conductor UI shows each environment's task "
            "meanwhile).",
        )
    if not isinstance(document, dict) or "environments" not in document:
        raise MetasyncError(
            f"the reconcile {execution.get('workflowId')} is {status} and has no status matrix"
            + (f": {execution['reasonForIncompletion']}" if execution.get("reasonForIncompletion")
               else ""),
            hint="Open it in the Conductor UI to see which task failed and why.",
        )  # fmt: skip
    if fmt == "json":
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        started = execution.get("startTime")
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started / 1000)) if started else ""
        )
        write_reconcile_text(sys.stdout, document, started=when, status=str(status))
    summary = document["summary"]
    if summary.get("failed") or status != "COMPLETED":
        return EXIT_USER_ERROR
    return EXIT_CHANGES if summary.get("drifted") else EXIT_OK


def latest_reconcile(url: str, workflow_id: str | None) -> dict[str, Any]:
    """The reconcile run ``workflow_id``, or the latest one metasync started (a schedule's,
    `control start`'s) in the last day."""
    with ConductorClient.connect(url, label=f"the control plane ({redact_url(url)})") as client:
        if workflow_id:
            found = client.execution(workflow_id, tasks=False)
            if found is None:
                raise ServerError(f"the control plane has no execution {workflow_id}",
                                  hint="Give the id `metasync control start` printed.")  # fmt: skip
            return found
        runs = client.correlated(WORKFLOW, CORRELATION, since=time.time() - 23 * 3600,
                                 tasks=False)  # the output holds the matrix  # fmt: skip
    runs.sort(key=lambda e: e.get("startTime") or 0, reverse=True)
    ended = [e for e in runs if e.get("status") not in ("RUNNING", "PAUSED")]
    if not ended:
        raise MetasyncError(
            f"no {WORKFLOW} run on {redact_url(url)} has ended in the last day"
            + (f" ({len(runs)} running)" if runs else ""),
            hint="Start one: `metasync control start --control URL --repository URL --wait 600`."
            if not runs else f"Wait for it: `metasync status --control {redact_url(url)} "
            f"--workflow {runs[0].get('workflowId')}` when it has ended.",
        )  # fmt: skip
    if ended[0] is not runs[0]:
        click.echo(f"(the latest run, {runs[0].get('workflowId')}, is still running: this is "
                   "the one before it)", err=True)  # fmt: skip
    return ended[0]
