"""Commands that move environments along git: changed, promote."""

from __future__ import annotations

import json

import click

from metasync import operations as op
from metasync.cli import _project, cli
from metasync.cli.boundary import EXIT_OK
from metasync.cli.complete import environments as complete_env


@cli.command()
@click.option(
    "--base",
    required=True,
    metavar="REF",
    help="The git commit to compare with (a pull request's base, a push's before).",
)
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@click.pass_context
def changed(ctx: click.Context, base: str, fmt: str) -> int:
    """List the environments whose desired state differs from REF's (one per line, or JSON)."""
    names = op.changed.changed(_project(ctx), base)
    if fmt == "json":
        click.echo(json.dumps(names))
    else:
        for name in names:
            click.echo(name)
    return EXIT_OK


@cli.command()
@click.argument("source", metavar="FROM", shell_complete=complete_env)
@click.argument("target", metavar="TO", shell_complete=complete_env)
@click.option("--branch", metavar="NAME", help="Branch to create (default: promote/TO-<commit>).")
@click.option("--push", "push", metavar="REMOTE", is_flag=False, flag_value="origin", default=None,
              help="Push the branch (to REMOTE, default origin).")  # fmt: skip
@click.option("--skip-stage", is_flag=True,
              help="Promote even though FROM is not TO's stage (TO's promotion.from); the "
              "promotion commit records it.")  # fmt: skip
@click.option("--unverified", is_flag=True,
              help="Promote even though FROM's server does not run the commit (not applied, "
              "did not land, or cannot be read); the promotion commit records it.")  # fmt: skip
@click.pass_context
def promote(ctx: click.Context, source: str, target: str, *, branch: str | None,
            push: str | None, skip_stage: bool, unverified: bool) -> int:  # fmt: skip
    """Pin TO to the commit FROM runs, on a new branch ready for a pull request. FROM must be TO's
    stage (its promotion.from) unless --skip-stage, and FROM's server must run that commit (applied
    and landed) unless --unverified."""
    done = op.promote.promote(_project(ctx), source, target, branch=branch, push=push,
                              skip_stage=skip_stage, unverified=unverified)  # fmt: skip
    if done.skipped is not None:
        skipped = (
            ", ".join(done.skipped) or f"its own stage ({target} is not promoted from {source})"
        )
        click.echo(f"--skip-stage: skipping {skipped}", err=True)
    if done.unverified:
        click.echo(
            f"--unverified: whether {source} runs {done.pinned[:7]} was not checked", err=True
        )
    click.echo(
        f"{done.target} now runs {done.pinned[:7]} (what {done.source} runs) on branch {done.branch}"
    )
    click.echo(f"commit {done.commit[:7]}; your checkout is unchanged.")
    for line in done.summary:
        click.echo(line)
    if not push:
        click.echo(f"Next: git push <remote> {done.branch}, and open a pull request.")
    return EXIT_OK
