"""The ``metasync`` command line (DESIGN.md section 4)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from metasync import __version__
from metasync.cli.boundary import EXIT_OK, EXIT_USER_ERROR, BoundaryGroup
from metasync.errors import Problem
from metasync.project import Project
from metasync.render.problems import write_problems
from metasync.render.resources import write_json, write_yaml


@click.group(cls=BoundaryGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The metasync project (the folder holding manifests/ and environments/).",
)
@click.version_option(__version__, prog_name="metasync")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path) -> None:
    """Conductor task definitions, workflows and event handlers from git."""
    ctx.obj = project_dir


def _project(ctx: click.Context) -> Project:
    return Project(ctx.find_root().obj)


@cli.command()
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="ENV",
    help="Check as this environment sees the project (repeatable; default: every one).",
)
@click.pass_context
def validate(ctx: click.Context, envs: tuple[str, ...]) -> int:
    """Check manifests offline: schema, references, variables."""
    project = _project(ctx)
    results = project.validate(envs)
    problems: list[Problem] = list(dict.fromkeys(p for r in results for p in r.problems))
    write_problems(sys.stderr, problems)
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    scope = ", ".join(r.environment for r in results if r.environment) or "no environment"
    count = max((len(r.resources) for r in results), default=0)
    if errors:
        click.echo(f"invalid: {errors} error(s), {warnings} warning(s) ({scope})", err=True)
        return EXIT_USER_ERROR
    click.echo(f"valid: {count} resources for {scope} ({warnings} warning(s))")
    return EXIT_OK


@cli.command()
@click.option("--env", required=True, metavar="ENV", help="The environment to render.")
@click.option(
    "-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
@click.pass_context
def render(ctx: click.Context, env: str, fmt: str) -> int:
    """Print an environment's desired state (variables resolved, secrets masked)."""
    desired = _project(ctx).render(env)
    write_problems(sys.stderr, desired.warnings)
    writer = write_json if fmt == "json" else write_yaml
    writer(sys.stdout, env, desired.resources)
    return EXIT_OK


def main() -> None:
    cli.main(prog_name="metasync")
