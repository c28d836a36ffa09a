"""`metasync control install`: metasync's own definitions on a control-plane Conductor."""

from __future__ import annotations

import sys

import click

from metasync import operations as op
from metasync.cli import cli
from metasync.cli.boundary import EXIT_OK, EXIT_USER_ERROR
from metasync.cli.strict import StrictCommand
from metasync.render.apply_result import write_apply_result
from metasync.render.plan_text import write_plan_text
from metasync.render.problems import write_problems
from metasync.worker.control import ENVIRONMENT, control_project


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
def install(url: str, owner_email: str, response_timeout: int) -> int:
    """Write the task types `metasync worker` polls and the metasync_reconcile workflow.

    Applied by metasync as a project of its own (metasync-control): shown as a plan, then
    applied; again, it changes nothing; it deletes nothing.
    """
    made = control_project(url, owner_email=owner_email, response_timeout=response_timeout)
    with made as project, op.lock.locked(project, ENVIRONMENT, "apply"):
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
    click.echo("Next: run `metasync worker --control URL` (one or more), then start "
               "metasync_reconcile with {repository, commit}.")  # fmt: skip
    return EXIT_OK
