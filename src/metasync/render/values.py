"""How values read in plans: compact JSON, one line."""

from __future__ import annotations

import json
from typing import Any


def compact(value: Any) -> str:
    if value is None:
        return "(absent)"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=False)


def summary_line(counts: dict[str, int]) -> str:
    return (
        f"{counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete, {counts['noop']} unchanged"
    )
