"""Drift (docs/cli.md, metasync drift): how a server differs from git, and which side moved. Pure.

A plan says what differs; the ownership mark says who moved. metasync stamps what it writes with
the fingerprint of what it wrote (``ownerApp: metasync/<project>@sha256:...``; the handler ledger
for event handlers), so for an object that differs:

* ``live-edited``: the server no longer holds what metasync last wrote: someone changed it there
  (whatever git says meanwhile: applying would overwrite their edit);
* ``not-applied``: the server holds what metasync last wrote (or something metasync never wrote)
  and git has moved on;
* ``missing-live``: git has it, the server does not;
* ``unmanaged-live``: the server has it, git does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from metasync.conductor.live import LiveState
from metasync.errors import Problem
from metasync.model.kinds import KINDS
from metasync.plan.model import Change, FieldChange, IgnoredField, Plan

DriftType = Literal["live-edited", "not-applied", "missing-live", "unmanaged-live"]
DRIFT_TYPES: tuple[DriftType, ...] = (
    "live-edited",
    "not-applied",
    "missing-live",
    "unmanaged-live",
)
MEANING: dict[DriftType, str] = {
    "live-edited": "edited on the server since metasync wrote it",
    "not-applied": "changed in git, not applied yet",
    "missing-live": "in git, missing on the server",
    "unmanaged-live": "on the server, not in git",
}


@dataclass(frozen=True, slots=True)
class LastWrite:
    """What the server recorded of the last write of a live object: when, and who. Servers of
    both flavours stamp task and workflow definitions (``updateTime``, or ``createTime`` for one
    never updated), schedules (``updatedTime``); event handlers carry nothing. ``updatedBy`` is
    the authenticated user on conductor-oss (empty without authentication) and, for workflow
    definitions, whatever the writer sent; ``ownerApp`` is whatever the writer sent."""

    time: datetime | None  # UTC
    action: Literal["updated", "created"] | None
    by: str | None
    owner_app: str | None
    #: why nothing is known (the kind carries no audit fields), for people
    note: str = ""

    @property
    def recorded(self) -> bool:
        return self.time is not None or self.by is not None or self.owner_app is not None


def last_write(kind: str, live: Mapping[str, Any]) -> LastWrite:
    """The server's own record of who wrote ``live`` and when (0 and "" mean: not recorded)."""
    updated = _millis(live.get("updateTime")) or _millis(live.get("updatedTime"))
    created = _millis(live.get("createTime"))
    by = _text(live.get("updatedBy")) if updated else None
    if not updated and created:
        by = _text(live.get("createdBy"))
    found = LastWrite(
        updated or created,
        "updated" if updated else "created" if created else None,
        by,
        _text(live.get("ownerApp")),
    )
    if found.recorded:
        return found
    return LastWrite(None, None, None, None,
                     f"the server records no time or user for {KINDS[kind].folder.replace('-', ' ')}")  # fmt: skip


def _millis(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True, slots=True)
class Drift:
    kind: str
    name: str
    version: int | None
    type: DriftType
    #: server (before) -> git (after), as in a plan
    fields: tuple[FieldChange, ...] = ()
    #: unmanaged-live: metasync wrote it (it left git); otherwise: None
    managed: bool | None = None
    #: what the server recorded of the live object's last write (None: no live object)
    last_write: LastWrite | None = None

    @property
    def title(self) -> str:
        return f"{self.kind} {self.name}" + (
            f" v{self.version}" if self.version is not None else ""
        )


@dataclass(frozen=True)
class EnvironmentDrift:
    environment: str
    server: str
    drift: tuple[Drift, ...] = ()
    #: the environment could not be checked (the drift list is then empty)
    error: Problem | None = None
    #: fields that differ, left out by environment.yaml's ignore:
    ignored: tuple[IgnoredField, ...] = ()

    def counts(self) -> dict[DriftType, int]:
        counts = dict.fromkeys(DRIFT_TYPES, 0)
        for item in self.drift:
            counts[item.type] += 1
        return counts


def classify(plan: Plan, live: LiveState, mark: str | None) -> tuple[Drift, ...]:
    """The plan's differences as drift, each with the side that moved and, where the server has
    the object, what it recorded of its last write."""
    found: list[Drift] = []
    for change in plan.changes:
        if change.action == "noop":
            continue
        if change.action == "delete":  # a prune candidate: on the server, no longer in git
            found.append(Drift(change.kind, change.name, change.version, "unmanaged-live",
                               managed=True, last_write=_written(live, change.key)))  # fmt: skip
            continue
        if change.action == "create" and change.previous_version is None:
            found.append(Drift(change.kind, change.name, change.version, "missing-live",
                               change.fields))  # fmt: skip
            continue
        found.append(_differs(change, live, mark))
    found += [
        Drift(
            u.kind,
            u.name,
            u.version,
            "unmanaged-live",
            managed=u.owned,
            last_write=_written(live, (u.kind, u.name, u.version)),
        )
        for u in plan.unmanaged
    ]
    found.sort(key=lambda d: (KINDS[d.kind].order, d.name, d.version or 0, d.type))
    return tuple(found)


def _written(live: LiveState, key: tuple[str, str, int | None]) -> LastWrite | None:
    current = live.objects.get(key)
    return last_write(key[0], current) if current is not None else None


def _differs(change: Change, live: LiveState, mark: str | None) -> Drift:
    # policy new-version: the live object is the newest version, the one git's was compared with
    version = change.previous_version if change.previous_version is not None else change.version
    key = (change.kind, change.name, version)
    written = live.written(key, mark)
    moved: DriftType = (
        "live-edited"
        if written is not None and written != change.live_fingerprint
        else "not-applied"
    )
    return Drift(change.kind, change.name, version, moved, change.fields,
                 last_write=_written(live, key))  # fmt: skip
