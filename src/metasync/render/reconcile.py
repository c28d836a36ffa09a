"""A reconcile's status matrix (environment x resource), from its environments' task outputs:
as JSON (the metasync_reconcile workflow's output ``status``, formatVersion 1), as a table
(``metasync status --control``), and as a notification."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

from rich.table import Table

from metasync.plan.drift import DRIFT_TYPES
from metasync.render.console import make_console

#: an environment's state in a reconcile, worst last
STATES = ("in-sync", "applied", "drifted", "failed")
_STYLE = {"in-sync": "green", "applied": "cyan", "drifted": "yellow", "failed": "bold red"}
#: environments named in a notification's text, at most
SHOWN = 20


def reconcile_document(repository: str, commit: str, names: Sequence[str],
                       results: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The matrix from ``results`` (the join's output: each environment's task output by its
    reference, ``drift_<env>`` or ``sync_<env>``). A resource is a row when it differs from git
    in any environment, its cells those environments (a checked environment without a cell: in
    sync there); an environment whose result is missing or an error is ``failed``."""
    columns = []
    rows: dict[tuple[str, str, int | None], dict[str, dict[str, Any]]] = {}
    checked = []
    for name in names:
        out = results.get(f"sync_{name}") or results.get(f"drift_{name}") or {}
        reports = out.get("environments") if isinstance(out, Mapping) else None
        if not reports:
            error = (out.get("error") or {}) if isinstance(out, Mapping) else {}
            columns.append(_column(name, None, "failed", error.get("message")
                                   or "no result: the task failed (see its execution)"))  # fmt: skip
            continue
        report = reports[0]
        if report.get("error"):
            columns.append(_column(name, report.get("server"), "failed", report["error"]))
            continue
        checked.append(name)
        applied = out.get("applied")
        landed = {(o["kind"], o["name"], o["version"]): o["result"]
                  for o in (applied or {}).get("outcomes", [])}  # fmt: skip
        for item in report.get("drift") or []:
            key = (item["kind"], item["name"], item["version"])
            rows.setdefault(key, {})[name] = {"drift": item["type"], "applied": landed.get(key)}
        drifted = bool(report.get("drift"))
        state = "in-sync" if not drifted else "applied" if applied and applied["ok"] else "drifted"
        column = _column(name, report.get("server"), state, None)
        column["counts"] = report.get("counts") or {  # an abridged document counts them all
            t: sum(d["type"] == t for d in report["drift"]) for t in DRIFT_TYPES
        }
        if out.get("abridged"):
            column["abridged"] = True
        column["autoSync"] = bool(out.get("autoSync"))
        if applied is not None:
            column["applied"] = {"landed": applied["landed"], "total": len(applied["outcomes"]),
                                 "ok": applied["ok"]}  # fmt: skip
        columns.append(column)
    resources = [
        {
            "kind": kind, "name": name, "version": version,
            "cells": cells,
        }
        for (kind, name, version), cells in sorted(rows.items(), key=lambda r: (r[0][0], r[0][1], r[0][2] or 0))
    ]  # fmt: skip
    return {
        "kind": "metasync-reconcile",
        "formatVersion": 1,
        "repository": repository,
        "commit": commit,
        "summary": {s: sum(c["state"] == s for c in columns) for s in STATES},
        "environments": columns,
        "resources": resources,
    }


def _column(name: str, server: str | None, state: str, error: str | None) -> dict[str, Any]:
    return {"environment": name, "server": server, "state": state, "error": error,
            "counts": None, "autoSync": False, "applied": None, "abridged": False}  # fmt: skip


def reconcile_message(document: Mapping[str, Any], env: str | None = None) -> dict[str, Any]:
    """A notification of the reconcile (Slack-compatible ``text``, and the facts as JSON): every
    environment, or ``env`` alone (its own webhooks)."""
    columns = [c for c in document["environments"] if env is None or c["environment"] == env]
    counts = {s: sum(c["state"] == s for c in columns) for s in STATES}
    said = ", ".join(f"{n} {s}" for s, n in counts.items() if n and s != "in-sync")
    head = (f"metasync reconcile of {document['repository']} at {document['commit'][:12]}: "
            f"{said or 'in sync'} ({len(columns)} environment(s))")  # fmt: skip
    lines = [head]
    shown = [c for c in columns if c["state"] != "in-sync"]
    for column in shown[:SHOWN]:
        lines.append(f"• {column['environment']} ({column['server'] or '?'}): {_said(column)}")
    if len(shown) > SHOWN:
        lines.append(f"... and {len(shown) - SHOWN} more")
    return {
        "text": "\n".join(lines),
        "metasync": {**document, "environments": columns, "resources": _only(document["resources"], env)},
    }  # fmt: skip


def _only(resources: Sequence[Mapping[str, Any]], env: str | None) -> list[Mapping[str, Any]]:
    if env is None:
        return list(resources)
    return [{**r, "cells": {env: r["cells"][env]}} for r in resources if env in r["cells"]]


def _said(column: Mapping[str, Any]) -> str:
    if column["state"] == "failed":
        return f"failed: {column['error']}"
    counts = ", ".join(f"{n} {t}" for t, n in (column["counts"] or {}).items() if n)
    if column["applied"] is not None:
        applied = column["applied"]
        counts += f"; applied: {applied['landed']} of {applied['total']} landed"
    return f"{column['state']}" + (f" ({counts})" if counts else "")


def write_reconcile_text(stream: IO[str], document: Mapping[str, Any], *, started: str = "",
                         status: str = "", color: bool | None = None) -> None:  # fmt: skip
    """The matrix as a table (a row per resource that differs anywhere), then a line per
    environment."""
    console = make_console(stream, color, width=200)
    console.print(
        f"Reconcile of {document['repository']} at {document['commit'][:12]}"
        + (f", started {started}" if started else "")
        + (f" ({status})" if status else ""),
        markup=False,
    )
    checked = [c["environment"] for c in document["environments"] if c["state"] != "failed"]
    if document["resources"]:
        table = Table(title="Differs from git", title_justify="left")
        table.add_column("resource")
        for env in checked:
            table.add_column(env)
        for row in document["resources"]:
            title = f"{row['kind']} {row['name']}" + (
                f" v{row['version']}" if row["version"] is not None else ""
            )
            table.add_row(title, *(_cell(row["cells"].get(env)) for env in checked))
        console.print(table)
    for column in document["environments"]:
        style = _STYLE[column["state"]]
        console.print(f"[{style}]{column['environment']}[/]: ", end="")
        console.print(f"{_said(column)} ({column['server'] or '?'})", markup=False)
    summary = document["summary"]
    console.print(", ".join(f"{n} {s}" for s, n in summary.items()) + ".", markup=False)


def _cell(cell: Mapping[str, Any] | None) -> str:
    if not cell:
        return "[green]in sync[/]"
    text = f"[yellow]{cell['drift']}[/]"
    if cell["applied"]:
        text += f" -> {cell['applied']}"
    return text
