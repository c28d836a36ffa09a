"""The fields environment.yaml's ``ignore:`` left out of a plan or a drift report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from metasync.plan.model import IgnoredField


def ignored_line(fields: Sequence[IgnoredField]) -> str:
    """``2 fields ignored by ignore: in metasync.yaml or environment.yaml (the server's values are
    kept)``; "" if none."""
    if not fields:
        return ""
    count = len(fields)
    return (
        f"{count} field{'s' if count != 1 else ''} ignored by ignore: in metasync.yaml or "
        "environment.yaml (the server's values are kept)"
    )


def ignored_json(fields: Sequence[IgnoredField]) -> list[dict[str, Any]]:
    return [
        {"kind": f.kind, "name": f.name, "version": f.version, "path": f.path,
         "reason": f.reason or None}
        for f in fields
    ]  # fmt: skip
