"""`metasync init`: start a project."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from metasync import operations as op
from metasync.cli import _interactive, cli
from metasync.cli.boundary import EXIT_OK
from metasync.errors import MetasyncError

DEFAULT_SERVER = "http://localhost:8080"


def _asked(check: Callable[[str], str]) -> Callable[[str], str]:
    """``check`` as click.prompt's value_proc: a wrong answer is said, and asked again."""

    def proc(value: str) -> str:
        try:
            return check(value)
        except MetasyncError as exc:
            raise click.BadParameter(exc.problem.message) from None

    return proc


def ask_server(env: str) -> str:
    """ENV's server URL, asked on the terminal."""
    answer: str = click.prompt(f"{env}'s Conductor server", default=DEFAULT_SERVER,
                               value_proc=_asked(op.init.check_server_url), err=True)  # fmt: skip
    return answer


@cli.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", metavar="NAME",
              help="The project's name: it marks what metasync writes on servers. Default: the "
              "git remote's path, when there is one.")  # fmt: skip
@click.option("--env", metavar="ENV", help="The first environment (default: dev).")
@click.option("--server", metavar="URL",
              help="ENV's Conductor server, without /api (e.g. http://localhost:8080).")  # fmt: skip
@click.option("--flavour", type=click.Choice(op.init.FLAVOURS),
              help="The server's flavour, when known (else the first plan asks the server).")  # fmt: skip
@click.pass_context
def init(ctx: click.Context, folder: Path | None, *, name: str | None, env: str | None,
         server: str | None, flavour: str | None) -> int:  # fmt: skip
    """Start a project in FOLDER (default: here): metasync.yaml, manifests/ and one environment.

    Asks for what is not given when run in a terminal; elsewhere --server is needed, and --name
    unless the git remote names the project.
    """
    root = folder or ctx.find_root().obj or Path.cwd()
    missing: list[str] = []
    op.init.refuse_existing(root.resolve())  # before any question
    if _interactive():
        name = name or click.prompt(
            "Project name (marks what metasync writes on servers)",
            default=op.init.default_name(root.resolve()) or root.resolve().name,
            value_proc=_asked(op.init.check_project_name), err=True,
        )  # fmt: skip
        env = env or click.prompt("First environment", default="dev",
                                  value_proc=_asked(op.init.check_env_name), err=True)  # fmt: skip
        server = server or ask_server(env)
    else:
        unnamed = name is None and op.init.default_name(root.resolve()) is None
        missing = [flag for flag, absent in (("--name NAME", unnamed), ("--server URL", server is None))
                   if absent]  # fmt: skip
    if missing:
        raise MetasyncError(
            f"init needs {' and '.join(missing)}, and there is no terminal to ask",
            hint="Run e.g. `metasync init --name orders --env dev --server "
            "http://localhost:8080`, or run it in a terminal to be asked.",
        )
    assert server is not None
    done = op.init.init(root, name=name, env=env or "dev", server=server, flavour=flavour)
    where = "" if folder is None and ctx.find_root().obj is None else f" in {root}"
    named = " (named after the git remote)" if done.from_remote else ""
    click.echo(f"Started the metasync project {done.name}{where}{named}:")
    for file in done.files:
        click.echo(f"  {file}")
    project = "" if not where else f"--project {root} "
    click.echo(
        f"Next: write a manifest in manifests/, then `metasync {project}validate`, "
        f"`metasync {project}plan --env {done.env}` and `metasync {project}apply --env {done.env}`."
    )
    if not done.in_git:
        click.echo("It is not in a git repository yet: `git init` and commit it (promotion, "
                   "`metasync changed` and `drift --adopt` work on git).")  # fmt: skip
    return EXIT_OK
