"""The table that ends every apply: what landed and what did not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from rich.table import Table

from metasync.errors import Problem
from metasync.plan.model import Change, Outcome
from metasync.render.console import make_console

_STYLE = {
    "landed": "green",
    "not landed": "bold red",
    "unknown": "bold yellow",
    "not applied": "dim",
}


def write_apply_result(stream: IO[str], outcomes: Sequence[Outcome], read_back: Sequence[Change],
                       color: bool | None = None, read_back_failed: Problem | None = None) -> None:  # fmt: skip
    console = make_console(stream, color, width=120)
    if not outcomes:
        console.print("Nothing to apply: the server matches git.")
        return
    table = Table(title="Apply result", title_justify="left", show_lines=False)
    table.add_column("object")
    table.add_column("action")
    table.add_column("result")
    for outcome in outcomes:
        table.add_row(outcome.change.title, outcome.change.action,
                      f"[{_STYLE[outcome.status]}]{outcome.status}[/]")  # fmt: skip
    console.print(table)
    for outcome in outcomes:
        for problem in outcome.problems:
            console.print(f"[red]{outcome.change.title}[/]: {problem.format()}")
    for change in read_back:
        paths = ", ".join(f.path for f in change.fields) or change.action
        console.print(
            f"[yellow]read-back[/]: {change.title} landed but the server now holds something else "
            f"({paths}); it will show in the next plan."
        )
    if read_back_failed is not None:
        console.print(
            f"[yellow]read-back failed[/]: {read_back_failed.message}; what landed is as the "
            "writes reported it. Plan again to see where the server stands."
        )
    landed = sum(o.status == "landed" for o in outcomes)
    unknown = sum(o.status == "unknown" for o in outcomes)
    tail = f"; {unknown} unknown (plan again to see whether they landed)" if unknown else ""
    console.print(f"{landed} of {len(outcomes)} change(s) landed{tail}.")
