"""``plan`` for a terminal: grouped by resource, +/-/~ like a code review, coloured on a tty."""

from __future__ import annotations

from typing import IO, Any

from rich.console import Console

from metasync.model.flavour import FLAVOUR_NAMES
from metasync.plan.model import Change, FieldChange, Plan
from metasync.render.console import Lines, make_console
from metasync.render.ignored import ignored_line
from metasync.render.tree import Line, diff_lines, is_task, value_lines, wrap_names
from metasync.render.values import summary_line

_MARK = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}
_LINE_STYLE = {"+": "green", "-": "red", "~": "yellow", " ": "dim"}
#: the width of text written to a file or a pipe (a CI log, say); a terminal's own otherwise
WIDTH = 100
#: what precedes a field's text in a plan: "    + "
_FIELD_INDENT = 6


def width_of(console: Console, stream: IO[str]) -> int:
    """The terminal's width when ``stream`` is one, else ``WIDTH``."""
    isatty = getattr(stream, "isatty", None)
    return console.width if callable(isatty) and isatty() else WIDTH


def field_lines(
    change: FieldChange, width: int = WIDTH - _FIELD_INDENT
) -> list[tuple[str, str, str]]:
    """(mark, style, text) lines for one field change, its text at most ``width`` wide where the
    value can be broken: added and removed values as trees, changed ones as a tree diff."""
    lines: list[Line]
    if change.before is None:
        lines = [("+", text) for text in value_lines(change.path, change.after, width)]
    elif change.after is None:
        lines = [("-", text) for text in value_lines(change.path, change.before, width)]
    elif _same_members(change.before, change.after):
        lines = diff_lines(f"{change.path} (order)", change.before, change.after, width)
    else:
        lines = diff_lines(change.path, change.before, change.after, width)
    return [(mark, _LINE_STYLE[mark], text) for mark, text in lines]


def shown_fields(change: Change) -> list[FieldChange]:
    """The fields of ``change`` as they read: as the manifest states them (``Change.shown``), a
    created workflow's tasks (one field each in the plan) as one ``tasks`` list."""
    fields = (
        change.shown if change.shown and change.action in ("create", "update") else change.fields
    )
    if change.action != "create" or change.previous_version is not None:
        return list(fields)
    out: list[FieldChange] = []
    tasks: list[Any] = []
    for field in fields:
        if field.before is None and field.path.startswith("tasks[ref=") and is_task(field.after):
            if not tasks:
                out.append(FieldChange("tasks", None, tasks))
            tasks.append(field.after)
        else:
            out.append(field)
    return out


def _same_members(before: object, after: object) -> bool:
    return (
        isinstance(before, list)
        and isinstance(after, list)
        and all(isinstance(x, str) for x in [*before, *after])
        and sorted(before) == sorted(after)
    )


def unmanaged_names(plan: Plan) -> dict[str, list[str]]:
    """The objects on the server that git does not name, by kind: ``name``, ``name v3``."""
    by_kind: dict[str, list[str]] = {}
    for u in plan.unmanaged:
        by_kind.setdefault(u.kind, []).append(
            u.name
            + (f" v{u.version}" if u.version is not None else "")
            + (" (written by metasync, no longer in git)" if u.owned else "")
        )
    return by_kind


def unmanaged_lines(plan: Plan, width: int) -> list[str]:
    """``On the server but not in git, left alone (312):`` and the names, kind by kind, wrapped."""
    lines = [f"On the server but not in git, left alone ({len(plan.unmanaged)}):"]
    for kind, names in unmanaged_names(plan).items():
        lines += wrap_names(f"  {kind} ({len(names)}): ", names, width, indent="    ")
    return lines


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
    width = width_of(console, stream)
    out = Lines(console)
    flavour = FLAVOUR_NAMES.get(plan.flavour, plan.flavour)
    project = f"; project {plan.project[0]} (from {plan.project[1]})" if plan.project else ""
    out.line((f"Plan for {plan.environment}: {plan.server}, {flavour}{project}", "bold"))
    for change in plan.pending:
        mark, style = _MARK[change.action]
        out.line()
        out.line((f"{mark} ", style), (_heading(change), "bold"))
        for remark_style, text in remarks(change):
            out.line((f"    ! {text}", remark_style))
        for field in shown_fields(change):
            for sub_mark, sub_style, text in field_lines(field, width - _FIELD_INDENT):
                out.line("    ", (f"{sub_mark} ", sub_style), text)
    if plan.unmanaged:
        out.line()
        out.line(("\n".join(unmanaged_lines(plan, width)), "dim"))
    for refusal in plan.refusals:
        out.line()
        out.line((f"refused: {refusal.message}", "bold red"))
        if refusal.hint:
            out.line((f"  {refusal.hint}", "red"))
    if plan.ignored:
        out.line()
        out.line((ignored_line(plan.ignored), "dim"))
    out.line()
    out.line((f"Plan: {summary_line(plan.summary())}.", "bold"))
