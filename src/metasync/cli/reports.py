"""Commands that report on servers: drift (and --adopt), status, export, history."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from metasync import operations as op
from metasync.cli import (
    _env_webhooks,
    _interactive,
    _notify,
    _project,
    _select,
    _warn,
    _warnings,
    cli,
)
from metasync.cli.boundary import EXIT_CHANGES, EXIT_OK, EXIT_USER_ERROR
from metasync.cli.complete import environments as complete_env
from metasync.cli.control import latest_reconcile, show_reconcile
from metasync.cli.init import ask_server
from metasync.errors import ConfigError, MetasyncError
from metasync.notify import send as send_notifications
from metasync.plan.select import parse_selectors
from metasync.project import Project
from metasync.render.console import make_console
from metasync.render.drift import write_drift_json, write_drift_markdown, write_drift_text
from metasync.render.notification import drift_message
from metasync.render.problems import write_problems
from metasync.render.status import write_status_json, write_status_text


@cli.command()
@click.option("--env", "envs", multiple=True, metavar="ENV", shell_complete=complete_env, help="An environment (repeatable).")  # fmt: skip
@click.option("--all", "all_envs", is_flag=True, help="Every environment, read concurrently.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "markdown"]),
              default="text", show_default=True)  # fmt: skip
@_select
@_notify
@click.option("--adopt", is_flag=True,
              help="Keep the live edits: rewrite the manifests (or the environment's overlays) "
              "to match the servers, in a commit on a new branch.")  # fmt: skip
@click.option("--branch", metavar="NAME", help="--adopt: the branch (default adopt/ENV-<commit>).")
@click.pass_context
def drift(ctx: click.Context, *, envs: tuple[str, ...], all_envs: bool, fmt: str,
          select: tuple[str, ...], notify: tuple[str, ...], adopt: bool,
          branch: str | None) -> int:  # fmt: skip
    """Report what changed behind git's back: exit 0 in sync, 2 drift, 1 error.

    Each drifted object says which side moved: live-edited (on the server since metasync wrote
    it), not-applied (in git), missing-live, unmanaged-live.
    """
    if bool(envs) == all_envs:
        raise MetasyncError(
            "drift needs --env ENV (repeatable) or --all",
            hint="Run `metasync drift --env prod`, or `metasync drift --all` on a schedule.",
        )
    project = _project(ctx)
    reports = op.drift.drift(project, envs, parse_selectors(select))
    writer = {"text": write_drift_text, "json": write_drift_json,
              "markdown": write_drift_markdown}[fmt]  # fmt: skip
    writer(sys.stdout, reports)
    errors = [r.error for r in reports if r.error is not None]
    write_problems(sys.stderr, errors)
    # the command's webhooks hear about every environment; an environment's own, about it
    warnings = send_notifications(notify, drift_message(reports))
    for report in reports:
        hooks = _env_webhooks(project, report.environment)
        if hooks:
            warnings += send_notifications(hooks, drift_message([report]))
    write_problems(sys.stderr, warnings)
    if errors:
        return EXIT_USER_ERROR
    if adopt:
        edited = [r.environment for r in reports if any(d.type == "live-edited" for d in r.drift)]
        adoption = (
            op.adopt.adopt(project, edited, branch=branch, selectors=parse_selectors(select))
            if edited
            else None
        )
        if adoption is None:
            click.echo("Nothing to adopt: no object was edited on a server.", err=True)
        else:
            click.echo(f"Adopted on branch {adoption.branch} (commit {adoption.commit[:7]}; your "
                       "checkout is unchanged):", err=True)  # fmt: skip
            for line in adoption.lines:
                click.echo(f"  {line}", err=True)
            click.echo(f"Next: git push <remote> {adoption.branch}, and open a pull request.",
                       err=True)  # fmt: skip
    return EXIT_CHANGES if any(r.drift for r in reports) else EXIT_OK


@cli.command()
@click.option("--env", "envs", multiple=True, metavar="ENV", shell_complete=complete_env, help="Environments (default: all).")  # fmt: skip
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@click.option("--control", metavar="URL",
              help="Instead: the latest reconcile on this control plane (its status matrix; "
              "exit 2 drift, 1 a failure).")  # fmt: skip
@click.option("--workflow", "workflow_id", metavar="ID",
              help="--control: this reconcile run, not the latest.")  # fmt: skip
@click.pass_context
def status(ctx: click.Context, envs: tuple[str, ...], fmt: str, control: str | None,
           workflow_id: str | None) -> int:  # fmt: skip
    """Each resource in each environment: in sync, drifted, missing, promotion pending.

    With --control: the status matrix of the latest metasync_reconcile run on a control plane
    (environment x resource that differs from git), no project needed.
    """
    if control is not None:
        if envs:
            raise MetasyncError("--env is not for --control: the run says its environments",
                                hint="Start a run of some environments: `metasync control "
                                "start --env ENV ...`.")  # fmt: skip
        return show_reconcile(latest_reconcile(control, workflow_id), fmt)
    if workflow_id is not None:
        raise MetasyncError("--workflow is for --control", hint="Add --control URL.")
    result = op.status.status(_project(ctx), envs)
    (write_status_json if fmt == "json" else write_status_text)(sys.stdout, result)
    return EXIT_OK


@cli.command()
@click.option("--env", "envs", required=True, multiple=True, metavar="ENV", shell_complete=complete_env,
              help="The environment whose server to export (repeat it to factor several).")  # fmt: skip
@click.option("--out", "out", required=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the project (manifests/, environments/).")  # fmt: skip
@click.option(
    "--vars",
    "as_vars",
    is_flag=True,
    help="Several environments: values that differ only by environment become vars.",
)
@click.option("--server", "servers", multiple=True, metavar="URL",
              help="Export this server, without a project: DIR becomes one, with ENV's server "
              "at URL (repeatable: the Nth --server is the Nth --env's).")  # fmt: skip
@_select
@_warnings
@click.pass_context
def export(ctx: click.Context, *, envs: tuple[str, ...], out: Path, as_vars: bool,
           servers: tuple[str, ...], select: tuple[str, ...]) -> int:  # fmt: skip
    """Write what live servers hold as manifests (and, for several environments, a shared base
    plus an overlay per environment). Exporting the same servers again changes no byte."""
    if len(set(envs)) != len(envs):
        raise MetasyncError("each --env once, please",
                            hint="Run e.g. `metasync export --env dev --env prod --out DIR`.")  # fmt: skip
    if as_vars and len(envs) < 2:
        raise MetasyncError("--vars needs several environments: it names what differs between them",
                            hint="Add another --env, or drop --vars.")  # fmt: skip
    selectors = parse_selectors(select)
    if servers:
        if len(servers) != len(envs):
            raise MetasyncError(
                f"{len(envs)} --env but {len(servers)} --server: the Nth --server is the Nth "
                "--env's server",
                hint="Run e.g. `metasync export --env dev --server http://localhost:8080 --out DIR`.",
            )
        done = op.export.export_servers(dict(zip(envs, servers, strict=True)), out, selectors,
                                        as_vars=as_vars)  # fmt: skip
    else:
        found = _exported(ctx, envs)
        if isinstance(found, Project):
            done = op.export.export(found, envs, out, selectors, as_vars=as_vars)
        else:
            done = op.export.export_servers(found, out, selectors, as_vars=as_vars)
    _warn(done.warnings)
    manifests = [f for f in done.files if f.startswith("manifests/")]
    overlays = [f for f in done.files if "/overlays/" in f]
    click.echo(f"exported {', '.join(envs)} into {out}: {len(manifests)} manifest file(s)"
               + (f", {len(overlays)} overlay(s)" if len(envs) > 1 else ""))  # fmt: skip
    click.echo(f"Next: metasync --project {out} plan --env {envs[0]}   (a no-op: git now matches)")
    return EXIT_OK


def _exported(ctx: click.Context, envs: tuple[str, ...]) -> Project | dict[str, str]:
    """The project whose environments export reads; without one, each environment's server
    asked on a terminal, or how to name them."""
    try:
        return _project(ctx)
    except ConfigError as exc:
        if ctx.find_root().obj is not None:
            raise
        if _interactive():
            click.echo(f"{exc.problem.message}: the export starts a project of its own.", err=True)
            return {env: ask_server(env) for env in envs}
        raise ConfigError(
            f"{exc.problem.message}; export reads an environment's server from the project",
            hint="Name the server instead: `metasync export --env dev --server URL --out DIR` "
            "writes a new project into DIR. Or run it inside a project (or pass --project DIR).",
        ) from None


@cli.command()
@click.option("--env", required=True, metavar="ENV", shell_complete=complete_env, help="The environment.")  # fmt: skip
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@click.pass_context
def history(ctx: click.Context, env: str, fmt: str) -> int:
    """List ENV's revisions: every apply and rollback, as its server keeps them (newest last)."""
    listing = op.rollback.list_history(_project(ctx), env)
    revisions = listing.history.revisions
    if fmt == "json":
        document = {
            "kind": "metasync-history",
            "formatVersion": 1,
            "environment": env,
            "server": listing.server,
            "revisions": [r.summary() for r in revisions],
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not revisions:
        click.echo(
            f"{env} has no revisions on {listing.server} yet: `metasync apply` records them."
        )
        return EXIT_OK
    console = make_console(sys.stdout, width=200)
    table = Table(title=f"History of {env} ({listing.server})", title_justify="left")
    for column in ("rev", "started (UTC)", "action", "result", "changes", "commit", "who"):
        table.add_column(column, justify="right" if column in ("rev", "changes") else "left")
    for r in revisions:
        if r.action == "rollback":
            action = f"rollback to {r.rollback_to}" if r.rollback_to is not None else "rollback"
        else:
            action = "apply"
        result = f"{r.result} ({r.landed} landed)" if r.landed is not None else r.result
        table.add_row(str(r.number), r.started[:19].replace("T", " "), action, result,
                      str(r.changes), (r.commit or "-")[:7], r.who)  # fmt: skip
    console.print(table)
    return EXIT_OK
