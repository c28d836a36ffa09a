"""The ``metasync`` command line (docs/cli.md)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from metasync import __version__
from metasync import operations as op
from metasync.cli.boundary import (
    EXIT_CHANGES,
    EXIT_OK,
    EXIT_USER_ERROR,
    OUTPUT,
    BoundaryGroup,
)
from metasync.cli.complete import environments as complete_env
from metasync.errors import MetasyncError, Problem
from metasync.manifests.suppression import unused
from metasync.notify import send as send_notifications
from metasync.plan.select import parse_selectors
from metasync.project import Project, find_project
from metasync.render.apply_result import write_apply_result
from metasync.render.notification import apply_message
from metasync.render.plan_json import write_plan_json
from metasync.render.plan_markdown import DEFAULT_LIMIT, render_plan_markdown
from metasync.render.plan_text import write_plan_text
from metasync.render.problems import WARNINGS_MODES, WarningsMode, write_problems, write_warnings
from metasync.render.resources import write_json, write_yaml

if TYPE_CHECKING:
    from metasync.apply.lease import Lease
    from metasync.apply.steps import Step
    from metasync.operations.apply import Applied

#: the other commands, each family in a module of its own that registers them on ``cli``: loaded
#: when one of its commands is asked for (cli/boundary.py), so that `metasync plan` loads neither
#: `metasync test`'s runner nor `metasync schema`'s JSON Schemas, nor git for `promote`
FAMILIES = {
    "init": "metasync.cli.init",
    "changed": "metasync.cli.promotion",
    "promote": "metasync.cli.promotion",
    "drift": "metasync.cli.reports",
    "status": "metasync.cli.reports",
    "export": "metasync.cli.reports",
    "history": "metasync.cli.reports",
    "schema": "metasync.cli.schema",
    "test": "metasync.cli.testing",
    "worker": "metasync.cli.worker",
    "control": "metasync.cli.control",
}


def _set_warnings(ctx: click.Context, param: click.Parameter, value: WarningsMode | None) -> None:
    if value is not None:
        OUTPUT.warnings = value


_warnings = click.option(
    "--warnings", type=click.Choice(WARNINGS_MODES), default=None, expose_value=False,
    callback=_set_warnings,
    help="How warnings are shown: summary (the default: by rule, each with its count and first "
    "places), all (every one, by file and line) or none (a count). Before or after the command.",
)  # fmt: skip


def _warn(warnings: Sequence[Problem], suppressed: int = 0) -> None:
    write_warnings(sys.stderr, warnings, OUTPUT.warnings, suppressed)


@click.group(
    cls=BoundaryGroup,
    lazy_commands=FAMILIES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The metasync project (the folder holding metasync.yaml, manifests/ and environments/). "
    "Default: the current folder or the nearest one above it that holds one, as git finds its "
    "repository.",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Neither read nor write the cache of loaded manifests (.metasync/cache/); also "
    "METASYNC_NO_CACHE=1.",
)
@click.version_option(__version__, prog_name="metasync")
@_warnings
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, no_cache: bool) -> None:
    """Conductor task definitions, workflows and event handlers from git."""
    ctx.obj = project_dir
    ctx.meta["metasync.cache"] = False if no_cache else None


def _project(ctx: click.Context) -> Project:
    given: Path | None = ctx.find_root().obj
    cache: bool | None = ctx.meta.get("metasync.cache")
    root = given if given is not None else find_project(Path.cwd())
    return Project(root, cache=cache)


@cli.command()
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="ENV",
    shell_complete=complete_env,
    help="Check as this environment sees the project (repeatable; default: every one).",
)
@_warnings
@click.pass_context
def validate(ctx: click.Context, envs: tuple[str, ...]) -> int:
    """Check manifests offline: schema, references, variables."""
    project = _project(ctx)
    results = project.validate(envs)
    silenced = list(dict.fromkeys(p for r in results for p in r.suppressed))
    stale = unused((s for r in results for s in r.suppressions), silenced)
    problems: list[Problem] = list(dict.fromkeys(p for r in results for p in r.problems))
    warnings = [p for p in problems if p.severity == "warning"] + stale
    errors = [p for p in problems if p.severity == "error"]
    _warn(warnings, len(silenced))
    write_problems(sys.stderr, errors)
    scope = ", ".join(r.environment for r in results if r.environment) or "no environment"
    count = max((len(r.resources) for r in results), default=0)
    said = f"{len(warnings)} warning(s)" + (f", {len(silenced)} suppressed" if silenced else "")
    if errors:
        click.echo(f"invalid: {len(errors)} error(s), {said} ({scope})", err=True)
        return EXIT_USER_ERROR
    click.echo(f"valid: {count} resources for {scope} ({said})")
    return EXIT_OK


@cli.command()
@click.option("--env", required=True, metavar="ENV", shell_complete=complete_env, help="The environment to render.")  # fmt: skip
@click.option(
    "-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
@_warnings
@click.pass_context
def render(ctx: click.Context, env: str, fmt: str) -> int:
    """Print an environment's desired state (variables resolved, secrets masked)."""
    desired = _project(ctx).render(env)
    _warn(desired.warnings, len(desired.suppressed))
    writer = write_json if fmt == "json" else write_yaml
    writer(sys.stdout, env, desired.resources)
    return EXIT_OK


_notify = click.option(
    "--notify", "notify", multiple=True, metavar="URL",
    help="Also POST a JSON summary to this webhook (repeatable; Slack-compatible). Environments "
    "may name theirs under notify:. A failed notification never changes the exit code.",
)  # fmt: skip

_select = click.option(
    "--select", "select", multiple=True, metavar="SEL",
    help="kind=...,name=GLOB,label.KEY=VALUE (comma: all must hold; repeated: any may hold).",
)  # fmt: skip


@cli.command()
@click.option("--env", required=True, metavar="ENV", shell_complete=complete_env, help="The environment to plan.")  # fmt: skip
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True)  # fmt: skip
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="PLAN",
              help="Also save the plan for `metasync apply PLAN` (holds no secret values).")  # fmt: skip
@click.option("--markdown-limit", "limit", type=click.IntRange(2_000), default=DEFAULT_LIMIT,
              show_default=True, metavar="CHARS",
              help="-o markdown: at most this many characters (a pull-request comment).")  # fmt: skip
@_select
@_warnings
@click.pass_context
def plan(ctx: click.Context, *, env: str, fmt: str, detailed_exitcode: bool, out: Path | None, limit: int,
         select: tuple[str, ...]) -> int:  # fmt: skip
    """Show, field by field, what apply would change on ENV's server."""
    selectors = parse_selectors(select)
    project = _project(ctx)
    planned = op.plan.plan(project, env, selectors)
    if out is not None:
        op.saved_plan.save_plan(project, planned, out)
    _warn(planned.warnings, planned.suppressed)
    if fmt == "markdown":
        sys.stdout.write(render_plan_markdown(planned.plan, limit))
    elif fmt == "json":
        write_plan_json(sys.stdout, planned.plan, planned.warnings, planned.suppressed)
    else:
        write_plan_text(sys.stdout, planned.plan)
    if detailed_exitcode and select and not (planned.plan.changes or planned.plan.unmanaged):
        return EXIT_USER_ERROR  # CI asked about objects that do not exist (warned above)
    return EXIT_CHANGES if detailed_exitcode and planned.plan.has_changes else EXIT_OK


@cli.command()
@click.argument("saved", metavar="[PLAN]", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip
@click.option("--env", metavar="ENV", shell_complete=complete_env, help="The environment to change.")  # fmt: skip
@click.option("--auto-approve", is_flag=True, help="Apply without asking (for CI).")
@click.option("--force", is_flag=True,
              help="Also carry out blocked changes: protected objects, workflow versions with "
              "running executions or still referenced.")  # fmt: skip
@click.option("--partial", is_flag=True,
              help="apply PLAN: apply the reviewed changes that still hold when others moved "
              "since the review (by default a stale plan applies nothing).")  # fmt: skip
@_select
@_notify
@_warnings
@click.pass_context
def apply(ctx: click.Context, *, saved: Path | None, env: str | None, auto_approve: bool,
          force: bool, partial: bool, select: tuple[str, ...], notify: tuple[str, ...]) -> int:  # fmt: skip
    """Make ENV's server match git, or apply a saved PLAN (only what it reviewed, if still true).

    Order: task defs, then workflows (sub-workflows first), then event handlers, then schedules.
    """
    project = _project(ctx)
    if saved is not None:
        if env is not None or select:
            raise MetasyncError(
                "apply PLAN takes neither --env nor --select: the plan says what to apply",
                hint="Run `metasync apply PLAN`, or plan again with the selection you want.",
            )
        return _apply_saved(project, saved, force=force, partial=partial, notify=notify)
    if partial:
        raise MetasyncError(
            "--partial is for a saved PLAN", hint="Run `metasync apply PLAN --partial`."
        )
    if env is None:
        raise MetasyncError(
            "apply needs --env ENV or a saved PLAN", hint="Run `metasync apply --env dev`."
        )
    applied = None
    with op.lock.locked(project, env, "apply") as lease:
        planned = op.plan.plan(project, env, parse_selectors(select))
        _warn(planned.warnings, planned.suppressed)
        write_plan_text(sys.stdout, planned.plan)
        if not planned.plan.has_changes:
            click.echo("Nothing to apply: the server matches git.")
        elif _confirmed(f"Apply these {len(planned.plan.pending)} change(s) to {env}?",
                        auto_approve):  # fmt: skip
            applied = op.apply.apply(project, planned, on_step=_progress, force=force)
    if applied is not None:  # the result first, whatever happened to the lock after it
        _write_applied(applied, env)
        _tell(project, env, notify, apply_message(env, planned.plan.server, applied.outcomes))
    _write_lease(lease)
    if applied is None:
        return EXIT_OK if not planned.plan.has_changes else EXIT_USER_ERROR
    return EXIT_OK if applied.ok else EXIT_USER_ERROR


@cli.command()
@click.argument("backup", metavar="[BACKUP]", required=False)
@click.option("--env", required=True, metavar="ENV", shell_complete=complete_env, help="The environment to restore.")  # fmt: skip
@click.option("--to", "to", type=click.IntRange(min=0), metavar="REV",
              help="The revision to go back to (`metasync history` lists them; 0: before the "
              "first). Default: undo the newest apply.")  # fmt: skip
@click.option("--auto-approve", is_flag=True, help="Restore without asking (for CI).")
@click.option("--force", is_flag=True,
              help="Also delete objects the apply created that are in use or running.")  # fmt: skip
@_notify
@_warnings
@click.pass_context
def rollback(ctx: click.Context, *, backup: str | None, env: str, to: int | None,
             auto_approve: bool, force: bool, notify: tuple[str, ...]) -> int:  # fmt: skip
    """Put ENV back as it was at an earlier revision (--to REV), by default before the newest
    apply; or restore a BACKUP file's before-images. Shown as a plan first; itself a revision."""
    if backup is not None and to is not None:
        raise MetasyncError(
            "rollback takes a BACKUP file or --to REV, not both",
            hint=f"Run `metasync rollback --env {env} --to REV`.",
        )
    project = _project(ctx)
    applied = None
    with op.lock.locked(project, env, "rollback") as lease:
        planned, restoring = op.rollback.rollback_plan(project, env, backup, to)
        click.echo(f"Rolling {env} back to {restoring.label}.")
        write_problems(sys.stderr, planned.desired.warnings)  # damaged newer backups skipped
        write_plan_text(sys.stdout, planned.plan)
        if not planned.plan.has_changes:
            click.echo(f"Nothing to restore: {env} is as it was at {restoring.label}.")
        elif _confirmed(f"Restore these {len(planned.plan.pending)} object(s) on {env}?",
                        auto_approve, "rollback"):  # fmt: skip
            applied = op.apply.apply(
                project, planned, on_step=_progress, force=force, restoring=restoring
            )
    if applied is not None:
        _write_applied(applied, env)
        message = apply_message(env, planned.plan.server, applied.outcomes, "rollback")
        _tell(project, env, notify, message)
    _write_lease(lease)
    if applied is None:
        return EXIT_OK if not planned.plan.has_changes else EXIT_USER_ERROR
    return EXIT_OK if applied.ok else EXIT_USER_ERROR


@cli.command()
@click.argument("lock_id", metavar="[LOCK_ID]", required=False)
@click.option("--env", required=True, metavar="ENV", shell_complete=complete_env, help="The environment to unlock.")  # fmt: skip
@click.pass_context
def unlock(ctx: click.Context, env: str, lock_id: str | None) -> int:
    """Show ENV's apply lock; remove it when it expired, or when it is still live and LOCK_ID
    names it (or, in a terminal, you confirm): only for a run that died (check that it did)."""
    project = _project(ctx)
    lock = op.lock.current(project, env)
    if lock is None:
        click.echo(f"{env} is not locked.")
        return EXIT_OK
    live = lock.expires > datetime.now(UTC)
    click.echo(f"{env} is locked by {lock.describe()}{'' if live else ' (expired)'}; "
               f"lock id {lock.lock_id}")  # fmt: skip
    command = f"metasync unlock --env {env} {lock.lock_id}"
    if lock_id is not None and lock_id != lock.lock_id:
        raise MetasyncError(f"{lock_id} is not the {env} lock: its id is {lock.lock_id}",
                            hint=f"Nothing was removed. If that run died, run `{command}`.")  # fmt: skip
    if live and lock_id is None:
        if not _interactive():
            raise MetasyncError(
                f"the {env} lock is live: without a terminal to confirm, unlock removes it only "
                "by its id", hint=f"Check that the run holding it died, then run `{command}`.",
            )  # fmt: skip
        if click.prompt(f"Remove the live {env} lock? The run holding it may still be applying."
                        " Only 'yes' removes it", default="", show_default=False, err=True) != "yes":  # fmt: skip
            click.echo("Not removed.", err=True)
            return EXIT_USER_ERROR
    for holder in op.lock.unlock(project, env, lock.lock_id):
        click.echo(f"removed the lock held by {holder.describe()} (lock id {holder.lock_id})")
    return EXIT_OK


def _progress(step: Step) -> None:
    click.echo(f"applying {step.describe()}", err=True)


def _confirmed(question: str, auto_approve: bool, command: str = "apply") -> bool:
    if auto_approve:
        return True
    if not _interactive():
        raise MetasyncError(
            f"{command} needs a confirmation and there is no terminal to ask",
            hint="Pass --auto-approve (CI), or run it in a terminal.",
        )
    answer = click.prompt(f"{question} Only 'yes' applies", default="", show_default=False,
                          err=True)  # fmt: skip
    if answer != "yes":
        click.echo("Not applied.", err=True)
        return False
    return True


def _write_applied(applied: Applied, env: str) -> None:
    write_apply_result(sys.stdout, applied.outcomes, applied.read_back,
                       read_back_failed=applied.read_back_failed)  # fmt: skip
    for problem in (applied.ledger_failed, applied.history_failed):
        if problem is not None:
            write_problems(sys.stderr, [problem])
    if applied.revision is not None:
        click.echo(f"Recorded as revision {applied.revision.number} of {env} "
                   f"(`metasync history --env {env}`; `metasync rollback --env {env}` undoes "
                   "it).")  # fmt: skip
    if applied.backup is not None:
        click.echo(f"Before-images saved in {applied.backup} (a local copy).")


def _env_webhooks(project: Project, env: str) -> list[str]:
    try:
        return project.webhooks(env)
    except MetasyncError:
        return []  # the environment's own error is reported already


def _tell(project: Project, env: str, urls: Sequence[str], message: dict[str, Any]) -> None:
    """Notify the command's and the environment's webhooks; failures are warnings only."""
    hooks = [*urls, *_env_webhooks(project, env)]
    if hooks:
        write_problems(sys.stderr, send_notifications(hooks, message))


def _apply_saved(project: Project, path: Path, *, force: bool, partial: bool,
                 notify: Sequence[str]) -> int:  # fmt: skip
    result = op.saved_plan.apply_saved(project, path, on_step=_progress, force=force,
                                       partial=partial)  # fmt: skip
    env = result.saved.environment
    again = f"Plan again (metasync plan --env {env} --out {path}) and review."
    titles = [
        f"{kind} {name}" + (f" v{version}" if version is not None else "")
        for kind, name, version in (refusal.key for refusal in result.refused)
    ]
    if result.withheld:  # stale: nothing was applied; each object that moved, once
        write_problems(sys.stderr, [
            *(Problem(f"{title} is stale: {r.reason}") for title, r in zip(titles, result.refused, strict=True)),
            Problem(f"the saved plan is stale in {len(titles)} object(s): nothing was applied",
                    None, f"{again} Or pass --partial to apply the reviewed changes that still hold."),
        ])  # fmt: skip
        _write_lease(result.lease)
        return EXIT_USER_ERROR
    write_problems(sys.stderr, [
        Problem(f"{title} is not applied: {r.reason}", None, again)
        for title, r in zip(titles, result.refused, strict=True)
    ])  # fmt: skip
    _write_applied(result.applied, env)
    _tell(project, env, notify, apply_message(env, result.saved.server, result.applied.outcomes))
    _write_lease(result.lease)
    return EXIT_OK if result.ok else EXIT_USER_ERROR


def _write_lease(lease: Lease | None) -> None:
    """What the lock replaced, and its release failure: after the result they must not hide."""
    if lease is not None:
        write_problems(sys.stderr, lease.problems)


def _interactive() -> bool:
    return sys.stdin.isatty()


def main() -> None:
    """The ``metasync`` program. Once its output is flushed the process ends at once: taking
    apart what a plan of 10,000 workflows holds (half a gigabyte of small objects) one by one
    costs a fifth of a second, and the system takes the memory back whole."""
    code = cli.main(prog_name="metasync", standalone_mode=False)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a reader that went away (`| head`): Python's own exit reports it
        sys.exit(code)
    os._exit(code)
