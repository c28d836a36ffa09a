"""Key paths inside a Conductor object, and how people read them.

A raw path is the tuple of keys and list indices from the object's root. People read tasks by their
reference, not by position: ``tasks[ref=charge].inputParameters.uri``. Because a taskReferenceName is
unique within a workflow, the path restarts at the innermost task, wherever it is nested.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from metasync.errors import Location

RawPath = tuple[str | int, ...]


class Locator(Protocol):
    """Maps a key path of a resource's document to a file and line."""

    def locate(self, path: Sequence[str | int], display: str = "") -> Location: ...


def display_path(root: Any, path: Sequence[str | int], prefix: str = "") -> str:
    """Format ``path`` into ``root`` for people; unknown parts are shown as given."""
    out = prefix
    node: Any = root
    for part in path:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
            ref = item.get("taskReferenceName") if isinstance(item, dict) else None
            out = f"tasks[ref={ref}]" if isinstance(ref, str) and ref else f"{out}[{part}]"
            node = item
        else:
            out = f"{out}.{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out
