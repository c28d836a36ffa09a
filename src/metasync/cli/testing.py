"""`metasync test`: the workflow tests in git, run by a real server."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from metasync import operations as op
from metasync.cli import _project, _select, cli
from metasync.cli.boundary import EXIT_OK, EXIT_USER_ERROR
from metasync.cli.complete import environments as complete_env
from metasync.errors import MetasyncError
from metasync.plan.select import parse_selectors
from metasync.render.test_report import (
    write_generated,
    write_test_json,
    write_test_junit,
    write_test_text,
)


@cli.command(name="test")
@click.option("--env", required=True, metavar="ENV", shell_complete=complete_env,
              help="The environment whose rendering is tested (overlays and variables applied).")  # fmt: skip
@_select
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "junit"]),
              default="text", show_default=True)  # fmt: skip
@click.option("--server", metavar="URL",
              help="Run on this server (a throwaway one) instead of ENV's.")  # fmt: skip
@click.option("--jobs", type=click.IntRange(min=1), default=4, show_default=True,
              help="Tests run at a time.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="How long each test may run (default: its timeoutSeconds, 30).")  # fmt: skip
@click.option("--changed-since", metavar="REF",
              help="Only the tests of what changed since commit REF (a pull request's base): new "
              "or edited tests, and tests of a workflow that differs, or of its sub-workflows or "
              "task definitions.")  # fmt: skip
@click.option("--junit", "junit", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write the results as JUnit XML to FILE (for CI's test view).")  # fmt: skip
@click.option("--generate", "generate", metavar="NAME",
              help="Write a starting test NAME from a real execution (--execution ID): its input, "
              "its workers' outputs as mocks, its path as expectations.")  # fmt: skip
@click.option("--execution", metavar="ID", help="--generate: the execution to start from.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="--generate: write the test to FILE (new) instead of stdout.")  # fmt: skip
@click.pass_context
def test(ctx: click.Context, *, env: str, select: tuple[str, ...], fmt: str, server: str | None,
         jobs: int, timeout: float | None, changed_since: str | None, junit: Path | None,
         generate: str | None, execution: str | None, out: Path | None) -> int:  # fmt: skip
    """Run ENV's WorkflowTest documents on a real server: each workflow as ENV gets it, tasks
    mocked by reference, everything else executed; exit 0 when all pass, 1 otherwise. Nothing
    is registered on the server, and every execution is removed, also when interrupted."""
    if generate is not None or execution is not None:
        return _generate(ctx, env, generate, execution, server=server, out=out)
    if out is not None:
        raise MetasyncError("--out is for --generate",
                            hint="Run `metasync test --env ENV -o junit > report.xml`.")  # fmt: skip
    started = time.monotonic()
    done = op.workflow_tests.run(_project(ctx), env, parse_selectors(select), server=server,
                                 jobs=jobs, timeout=timeout, changed_since=changed_since)  # fmt: skip
    seconds = time.monotonic() - started
    if not done.results and fmt == "text":
        click.echo(f"No test of {env} covers what changed since {changed_since}.")
        return EXIT_OK
    writer = {"text": write_test_text, "json": write_test_json, "junit": write_test_junit}[fmt]
    writer(sys.stdout, done.environment, done.server, done.results, seconds)
    if junit is not None:
        with junit.open("w") as stream:
            write_test_junit(stream, done.environment, done.server, done.results, seconds)
    return EXIT_OK if done.ok else EXIT_USER_ERROR


def _generate(ctx: click.Context, env: str, name: str | None, execution: str | None, *,
              server: str | None, out: Path | None) -> int:  # fmt: skip
    if not name or not execution:
        raise MetasyncError(
            "--generate NAME and --execution ID go together",
            hint="Run `metasync test --env ENV --generate NAME --execution ID [--out FILE]`.",
        )
    if out is not None and out.exists():
        raise MetasyncError(f"{out} exists: a generated test never overwrites a file",
                            hint="Pass a new --out FILE, or leave it out to print the test.")  # fmt: skip
    document = op.workflow_tests.generate(_project(ctx), env, name, execution, server=server)
    if out is None:
        write_generated(sys.stdout, document, execution)
        return EXIT_OK
    with out.open("x") as stream:
        write_generated(stream, document, execution)
    click.echo(
        f"wrote {out}: run it with `metasync test --env {env} --select name={name}`", err=True
    )
    return EXIT_OK
