"""The table that ends every apply: what landed and what did not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

from rich.table import Table

from metasync.errors import Problem
from metasync.plan.model import Change, Outcome
from metasync.plan.saved import Refusal
from metasync.render.console import make_console

#: past this many objects, those that landed are counted by kind and action (a table of 10,000
#: rows is read by nobody, and took four seconds to draw); each other one keeps its own row
LISTED_MAX = 100

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
    for what, action, status in _rows(outcomes):
        table.add_row(what, action, f"[{_STYLE[status]}]{status}[/]")
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


def _rows(outcomes: Sequence[Outcome]) -> list[tuple[str, str, str]]:
    """A row per object; past ``LISTED_MAX``, one per kind and action for those that landed
    (``WorkflowDef: 2,000 objects, a v1 … z v1``, where the first of them stood)."""
    if len(outcomes) <= LISTED_MAX:
        return [(o.change.title, o.change.action, o.status) for o in outcomes]
    landed: dict[tuple[str, str], list[Change]] = {}
    order: list[Outcome | tuple[str, str]] = []
    for o in outcomes:
        if o.status != "landed":
            order.append(o)
            continue
        group = (o.change.kind, o.change.action)
        if group not in landed:
            landed[group] = []
            order.append(group)
        landed[group].append(o.change)
    return [
        (o.change.title, o.change.action, o.status)
        if isinstance(o, Outcome)
        else _group(o, landed[o])
        for o in order
    ]


def _group(group: tuple[str, str], changes: list[Change]) -> tuple[str, str, str]:
    kind, action = group
    if len(changes) == 1:
        return (changes[0].title, action, "landed")
    first, last = (c.title.removeprefix(f"{kind} ") for c in (changes[0], changes[-1]))
    return (f"{kind}: {len(changes):,} objects, {first} … {last}", action, "landed")


def apply_document(environment: str, server: str, outcomes: Sequence[Outcome], *,
                   refused: Sequence[Refusal] = (), withheld: bool = False) -> dict[str, Any]:  # fmt: skip
    """What an apply did, object by object (formatVersion 1): ``ok`` when every change landed
    and nothing reviewed was refused; ``withheld``: nothing applied, the plan was stale."""
    return {
        "kind": "metasync-apply",
        "formatVersion": 1,
        "environment": environment,
        "server": server,
        "ok": all(o.status == "landed" for o in outcomes) and not refused,
        "withheld": withheld,
        "landed": sum(o.status == "landed" for o in outcomes),
        "outcomes": [
            {**outcome_json(o), "problems": [p.message for p in o.problems]} for o in outcomes
        ],
        "refused": [
            {"kind": r.key[0], "name": r.key[1], "version": r.key[2], "reason": r.reason}
            for r in refused
        ],
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """One object's outcome, as apply documents and notifications list it."""
    change = outcome.change
    return {"kind": change.kind, "name": change.name, "version": change.version,
            "action": change.action, "result": outcome.status}  # fmt: skip
