"""``metasync status``: resource x environment, as a table or JSON (formatVersion 1)."""

from __future__ import annotations

import json
from typing import IO, Any

from rich.table import Table

from metasync.plan.model import Cell, StatusMatrix
from metasync.render.console import make_console

_STYLE = {
    "in-sync": "green",
    "drifted": "yellow",
    "missing": "red",
    "absent": "dim",
    "unknown": "dim",
}


def _cell(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    text = cell.state + (
        f" {cell.fingerprint.removeprefix('sha256:')[:8]}" if cell.fingerprint else ""
    )
    if cell.pending:
        text += " (promotion pending)"
    return f"[{_STYLE.get(cell.state, '')}]{text}[/]"


def write_status_text(stream: IO[str], status: StatusMatrix, color: bool | None = None) -> None:
    console = make_console(stream, color, width=200)
    table = Table(title="Status", title_justify="left")
    table.add_column("resource")
    for env in status.environments:
        table.add_column(env)
    for (kind, name, version), cells in status.rows:
        title = f"{kind} {name}" + (f" v{version}" if version is not None else "")
        table.add_row(title, *(_cell(cells.get(env)) for env in status.environments))
    console.print(table)
    for env in status.environments:
        console.print(f"{env}: {status.servers.get(env, '')}", markup=False)


def status_document(status: StatusMatrix) -> dict[str, Any]:
    return {
        "formatVersion": 1,
        "environments": [{"environment": e, "server": status.servers.get(e)} for e in status.environments],
        "resources": [
            {
                "kind": kind, "name": name, "version": version,
                "cells": {
                    env: {"state": c.state, "fingerprint": c.fingerprint, "promotionPending": c.pending}
                    for env, c in cells.items()
                },
            }
            for (kind, name, version), cells in status.rows
        ],
    }  # fmt: skip


def write_status_json(stream: IO[str], status: StatusMatrix) -> None:
    json.dump(status_document(status), stream, indent=2)
    stream.write("\n")
