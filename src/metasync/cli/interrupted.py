"""What Ctrl-C during an apply or rollback says: what landed, where the before-images are, the lock,
and what to run next."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from metasync.render.apply_result import write_apply_result
from metasync.render.problems import write_problems

if TYPE_CHECKING:
    from metasync.operations.apply import ApplyInterrupted


def write_interrupted(stop: ApplyInterrupted) -> None:
    applied, env = stop.applied, stop.env
    write_apply_result(sys.stdout, applied.outcomes, ())
    counts = {s: sum(o.status == s for o in applied.outcomes)
              for s in ("landed", "not applied", "unknown", "not landed")}  # fmt: skip
    rest = ", ".join(f"{n} {status}" for status, n in counts.items() if n and status != "landed")
    click.echo(f"interrupted: stopped after {counts['landed']} of {len(applied.outcomes)} "
               f"change(s) landed on {env}" + (f" ({rest})" if rest else "") + ".", err=True)  # fmt: skip
    where = []
    if applied.revision is not None:
        where.append(f"revision {applied.revision.number} of {env} on its server "
                     f"(`metasync history --env {env}`)")  # fmt: skip
    if applied.backup is not None:
        where.append(f"a local copy in {applied.backup}")
    if where:
        click.echo(f"  Before-images: {', and '.join(where)}.", err=True)
    if stop.lease is not None and stop.lease.release_failed is None:
        click.echo(f"  The {env} lock was released.", err=True)
    click.echo(f"  Next: `metasync plan --env {env}` shows what remains (`metasync apply --env "
               f"{env}` applies it); `metasync rollback --env {env}` undoes what landed.", err=True)  # fmt: skip
    write_problems(sys.stderr, [p for p in (applied.ledger_failed, applied.history_failed) if p])
    if stop.lease is not None:
        write_problems(sys.stderr, stop.lease.problems)
