"""``metasync drift``: text for a terminal, JSON (formatVersion 1), Markdown for an issue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any

from rich.text import Text

from metasync.plan.drift import DRIFT_TYPES, MEANING, Drift, EnvironmentDrift
from metasync.render.console import make_console
from metasync.render.ignored import ignored_json, ignored_line
from metasync.render.last_write import last_write_json, last_write_line
from metasync.render.plan_markdown import DEFAULT_LIMIT  # GitHub's limit, with room
from metasync.render.plan_text import field_lines, width_of
from metasync.render.values import paths_summary

FORMAT_VERSION = 1
_STYLE = {
    "live-edited": "bold red",
    "not-applied": "yellow",
    "missing-live": "red",
    "unmanaged-live": "cyan",
}


def drift_document(reports: Sequence[EnvironmentDrift]) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "environments": [
            {
                "environment": r.environment,
                "server": r.server,
                "inSync": not r.drift and r.error is None,
                "error": r.error.message if r.error else None,
                "ignored": ignored_json(r.ignored),
                "drift": [
                    {
                        "kind": d.kind,
                        "name": d.name,
                        "version": d.version,
                        "type": d.type,
                        "fields": [
                            {"path": f.path, "before": f.before, "after": f.after} for f in d.fields
                        ],
                        **({"managedByMetasync": d.managed} if d.managed is not None else {}),
                        "lastWrite": last_write_json(d.last_write),
                    }
                    for d in r.drift
                ],
            }
            for r in reports
        ],
    }


def write_drift_json(stream: IO[str], reports: Sequence[EnvironmentDrift]) -> None:
    json.dump(drift_document(reports), stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def summary(report: EnvironmentDrift) -> str:
    if report.error is not None:
        return "not checked: " + report.error.message
    if not report.drift:
        return "in sync"
    counts = report.counts()
    return ", ".join(f"{counts[t]} {t}" for t in DRIFT_TYPES if counts[t])


def write_drift_text(stream: IO[str], reports: Sequence[EnvironmentDrift],
                     color: bool | None = None) -> None:  # fmt: skip
    console = make_console(stream, color)
    for index, report in enumerate(reports):
        if index:
            console.print()
        console.print(Text(f"{report.environment} ({report.server}): {summary(report)}",
                           style="bold"))  # fmt: skip
        if report.ignored:
            console.print(Text(f"  {ignored_line(report.ignored)}", style="dim"))
        for item in report.drift:
            console.print(Text.assemble(
                "  ", (f"{item.type:<15}", _STYLE[item.type]), f"{item.title}  ",
                (f"({_meaning(item)})", "dim"),
            ))  # fmt: skip
            if item.last_write is not None:
                console.print(Text("      " + last_write_line(item.last_write), style="dim"))
            shown = item.fields if item.type != "missing-live" else ()  # the whole object
            width = width_of(console, stream) - 8  # "      ~ "
            for mark, style, text in (line for f in shown for line in field_lines(f, width)):
                console.print(Text.assemble("      ", (f"{mark} ", style), text))
    if any(r.drift for r in reports):
        console.print(Text("\nFields read server -> git.", style="dim"))


def _meaning(item: Drift) -> str:
    if item.type == "unmanaged-live" and item.managed:
        return "on the server, not in git; metasync wrote it"
    return MEANING[item.type]


def render_drift_markdown(reports: Sequence[EnvironmentDrift], limit: int = DEFAULT_LIMIT) -> str:
    out = ""
    for report in reports:
        out += f"### metasync drift: `{report.environment}`\n\n"
        out += f"**{summary(report)}** on `{report.server}`\n\n"
        if report.ignored:
            out += f"<sub>{ignored_line(report.ignored)}</sub>\n\n"
        if not report.drift:
            continue
        out += "| object | drift | fields (server -> git) |\n|---|---|---|\n"
        for shown, item in enumerate(report.drift):
            paths = paths_summary(item.fields, quote="`")
            written = (
                f" ({last_write_line(item.last_write, relative=False)})"
                if item.last_write is not None
                else ""
            )
            row = f"| `{item.title}` | {item.type}: {_meaning(item)}{written} | {paths} |\n"
            footer = (
                f"\n**{len(report.drift) - shown} more object(s) not shown** (size limit). "
                "The full report: `metasync drift --env " + report.environment + "`.\n\n"
            )
            if len(out) + len(row) + len(footer) > limit:
                out += footer
                break
            out += row
        else:
            out += "\n"
    return out


def write_drift_markdown(stream: IO[str], reports: Sequence[EnvironmentDrift]) -> None:
    stream.write(render_drift_markdown(reports))
