"""What a server holds, read with one request per kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metasync.conductor.client import LiveReader
from metasync.conductor.normalize import Flavour, flavour_of

Key = tuple[str, str, int | None]
#: workflow definitions metasync keeps for itself (apply locks): never planned, listed or pruned
LOCK_PREFIX = "metasync_lock."


@dataclass(frozen=True)
class LiveState:
    server: str
    version: str | None
    flavour: Flavour
    objects: Mapping[Key, Mapping[str, Any]]


def read_live(reader: LiveReader) -> LiveState:
    version = reader.server_version()
    objects: dict[Key, Mapping[str, Any]] = {}
    for spec in reader.taskdefs():
        objects[("TaskDef", spec["name"], None)] = spec
    for spec in reader.workflows():
        if str(spec.get("name", "")).startswith(LOCK_PREFIX):
            continue
        objects[("WorkflowDef", spec["name"], int(spec.get("version", 1)))] = spec
    for spec in reader.event_handlers():
        objects[("EventHandler", spec["name"], None)] = spec
    return LiveState(reader.url, version, flavour_of(version), objects)
