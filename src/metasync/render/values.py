"""Summary lines of plans: counts per action, the first paths of a change."""

from __future__ import annotations

from collections.abc import Sequence

from metasync.plan.model import FieldChange


def summary_line(counts: dict[str, int]) -> str:
    return (
        f"{counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['noop']} unchanged"
    )


def paths_summary(fields: Sequence[FieldChange], shown: int = 5, quote: str = "") -> str:
    """``a, b, c (+2 more)``: the first paths of a change's fields, for one line."""
    head = ", ".join(f"{quote}{f.path}{quote}" for f in fields[:shown])
    return head + (f" (+{len(fields) - shown} more)" if len(fields) > shown else "")
