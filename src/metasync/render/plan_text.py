"""``plan`` for a terminal: grouped by resource, +/-/~ like a code review, coloured on a tty."""

from __future__ import annotations

from typing import IO

from rich.text import Text

from metasync.model.flavour import FLAVOUR_NAMES
from metasync.plan.model import Change, FieldChange, Plan
from metasync.render.console import make_console
from metasync.render.values import compact, summary_line

_MARK = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}


def field_lines(change: FieldChange) -> list[tuple[str, str, str]]:
    """(mark, style, text) lines for one field change."""
    if change.before is None:
        return [("+", "green", f"{change.path}: {compact(change.after)}")]
    if change.after is None:
        return [("-", "red", f"{change.path}: {compact(change.before)}")]
    before, after = change.before, change.after
    if _same_members(before, after):
        return [("~", "yellow", f"{change.path} (order): {compact(before)} -> {compact(after)}")]
    return [("~", "yellow", f"{change.path}: {compact(change.before)} -> {compact(change.after)}")]


def _same_members(before: object, after: object) -> bool:
    return (
        isinstance(before, list)
        and isinstance(after, list)
        and all(isinstance(x, str) for x in [*before, *after])
        and sorted(before) == sorted(after)
    )


def _heading(change: Change) -> str:
    return f"{change.title}  ({detail(change)})"


def detail(change: Change) -> str:
    """``update, 2 field(s)``, ``new version, 2 field(s) changed from v1 (v1 stays)``, ``delete``."""
    if change.previous_version is not None:
        return (
            f"new version, {len(change.fields)} field(s) changed from v{change.previous_version} "
            f"(v{change.previous_version} stays)"
        )
    if change.action == "update":
        return f"update, {len(change.fields)} field(s)"
    return change.action


def remarks(change: Change) -> list[tuple[str, str]]:
    """(style, text) lines under a change: why apply holds it back, what to know."""
    lines = []
    if change.blocked:
        lines.append(("bold red", f"blocked: {change.blocked}"))
    if change.note:
        lines.append(("yellow", f"note: {change.note}"))
    if change.action == "delete" and change.reason:
        lines.append(("dim", change.reason))
    return lines


def write_plan_text(stream: IO[str], plan: Plan, color: bool | None = None) -> None:
    console = make_console(stream, color)
    console.print(
        Text(
            f"Plan for {plan.environment}: {plan.server}, {FLAVOUR_NAMES.get(plan.flavour, plan.flavour)}"
            + (f"; project {plan.project[0]} (from {plan.project[1]})" if plan.project else ""),
            style="bold",
        )
    )
    for change in plan.pending:
        mark, style = _MARK[change.action]
        console.print(Text.assemble("\n", (f"{mark} ", style), (_heading(change), "bold")))
        for remark_style, text in remarks(change):
            console.print(Text(f"    ! {text}", style=remark_style))
        for field in change.fields:
            for sub_mark, sub_style, text in field_lines(field):
                console.print(Text.assemble("    ", (f"{sub_mark} ", sub_style), text))
    if plan.unmanaged:
        names = ", ".join(
            f"{u.kind} {u.name}"
            + (f" v{u.version}" if u.version is not None else "")
            + (" (written by metasync, no longer in git)" if u.owned else "")
            for u in plan.unmanaged
        )
        console.print(Text(f"\nOn the server but not in git (left alone): {names}", style="dim"))
    for refusal in plan.refusals:
        console.print(Text(f"\nrefused: {refusal.message}", style="bold red"))
        if refusal.hint:
            console.print(Text(f"  {refusal.hint}", style="red"))
    counts = plan.summary()
    console.print(Text(f"\nPlan: {summary_line(counts)}.", style="bold"))
