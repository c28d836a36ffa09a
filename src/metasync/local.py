"""metasync's own state on this machine, under ``.metasync/`` in the project (never for git: the
folder ignores itself). A cache: a project folder metasync cannot write to only loses the memory."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

LOCAL_DIR = ".metasync"


def read_local(root: Path, relative: str) -> dict[str, Any]:
    """One JSON object of local state; empty when missing or unreadable."""
    try:
        saved = json.loads((root / relative).read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def write_local(root: Path, relative: str, text: str) -> None:
    path = root / relative
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = root / LOCAL_DIR / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")
        path.write_text(text)
    except OSError:
        pass


def remove_local(root: Path, relative: str) -> None:
    with contextlib.suppress(OSError):
        (root / relative).unlink(missing_ok=True)
