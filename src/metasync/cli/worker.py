"""`metasync worker`: metasync's task types, run as workers of a control-plane Conductor."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from metasync.cli import cli
from metasync.cli.boundary import EXIT_OK
from metasync.lazy import lazy_module
from metasync.worker.serve import serve

platformdirs = lazy_module("platformdirs")


@cli.command()
@click.option("--control", required=True, metavar="URL",
              help="The control-plane Conductor to poll (its URL, without /api).")  # fmt: skip
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="Tasks of each type run at a time.")  # fmt: skip
@click.option("--domain", metavar="D", help="Poll the tasks of this domain only.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the worker keeps its trees of the repositories (default: the user's "
              "cache folder, metasync/worker).")  # fmt: skip
@click.option("--notify", "notify", multiple=True, metavar="URL", envvar="METASYNC_WORKER_NOTIFY",
              help="A webhook told of each reconcile's drift and failures (repeatable; or "
              "METASYNC_WORKER_NOTIFY, URLs separated by spaces: a webhook URL is often a "
              "credential); each environment's notify: webhooks are told of it too.")  # fmt: skip
def worker(control: str, threads: int, domain: str | None, cache: Path | None,
           notify: tuple[str, ...]) -> int:  # fmt: skip
    """Poll metasync's task types (drift, sync, plan, apply, test, export and the reconcile's
    own) on a control-plane Conductor until SIGTERM.

    Each task names a repository, a commit and an environment, and gets the command's JSON
    document as its output. SIGTERM or Ctrl-C: no new task; those in hand finish, then exit 0.
    """
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    folder = cache or platformdirs.user_cache_path("metasync", appauthor=False) / "worker"

    def said(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    serve(
        control, threads=threads, domain=domain, cache=folder, stop=stop, notify=notify, said=said
    )
    return EXIT_OK
