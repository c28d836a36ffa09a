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

from dataclasses import dataclass
from typing import Literal

from metasync.conductor.live import LiveState
from metasync.errors import Problem
from metasync.model.kinds import KINDS
from metasync.plan.model import Change, FieldChange, Plan

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
class Drift:
    kind: str
    name: str
    version: int | None
    type: DriftType
    #: server (before) -> git (after), as in a plan
    fields: tuple[FieldChange, ...] = ()
    #: unmanaged-live: metasync wrote it (it left git); otherwise: None
    managed: bool | None = None

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

    def counts(self) -> dict[DriftType, int]:
        counts = dict.fromkeys(DRIFT_TYPES, 0)
        for item in self.drift:
            counts[item.type] += 1
        return counts


def classify(plan: Plan, live: LiveState, mark: str | None) -> tuple[Drift, ...]:
    """The plan's differences as drift, each with the side that moved."""
    found: list[Drift] = []
    for change in plan.changes:
        if change.action == "noop":
            continue
        if change.action == "delete":  # a prune candidate: on the server, no longer in git
            found.append(Drift(change.kind, change.name, change.version, "unmanaged-live",
                               managed=True))  # fmt: skip
            continue
        if change.action == "create" and change.previous_version is None:
            found.append(Drift(change.kind, change.name, change.version, "missing-live",
                               change.fields))  # fmt: skip
            continue
        found.append(_differs(change, live, mark))
    found += [
        Drift(u.kind, u.name, u.version, "unmanaged-live", managed=u.owned) for u in plan.unmanaged
    ]
    found.sort(key=lambda d: (KINDS[d.kind].order, d.name, d.version or 0, d.type))
    return tuple(found)


def _differs(change: Change, live: LiveState, mark: str | None) -> Drift:
    # policy new-version: the live object is the newest version, the one git's was compared with
    version = change.previous_version if change.previous_version is not None else change.version
    written = live.written((change.kind, change.name, version), mark)
    moved: DriftType = (
        "live-edited"
        if written is not None and written != change.live_fingerprint
        else "not-applied"
    )
    return Drift(change.kind, change.name, version, moved, change.fields)
