"""A plan is data: changes over a closed set of actions, each with field-level before and after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from metasync.errors import Problem

Action = Literal["create", "update", "delete", "noop"]
ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "noop")


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed value; ``before`` None: added, ``after`` None: removed."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    name: str
    version: int | None
    action: Action
    fields: tuple[FieldChange, ...] = ()
    live_fingerprint: str | None = None
    desired_fingerprint: str | None = None
    reason: str = ""  # for people only: apply never reads it
    #: why apply will not carry it out without --force (protected, running executions, referenced)
    blocked: str | None = None
    #: policy new-version: the live version this new version was compared with (it stays)
    previous_version: int | None = None
    #: worth knowing, changes nothing (e.g. running executions keep their own copy)
    note: str = ""
    #: the rendered manifest (what apply sends) and the live object (what it replaces)
    desired: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    live: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    #: for people: ``fields`` as the manifest states them (a create: what the user wrote,
    #: defaults included; an inserted task: its stated fields, not every default); empty: as
    #: ``fields``. The plan JSON carries ``fields``, the canonical form apply compares.
    shown: tuple[FieldChange, ...] = field(default=(), compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str, int | None]:
        return (self.kind, self.name, self.version)

    @property
    def title(self) -> str:
        return f"{self.kind} {self.name}" + (
            f" v{self.version}" if self.version is not None else ""
        )


@dataclass(frozen=True, slots=True)
class Unmanaged:
    """On the server, not in git (and inside the selection)."""

    kind: str
    name: str
    version: int | None
    #: it carries this project's ownership mark: metasync wrote it, and git no longer names it
    owned: bool = False


@dataclass(frozen=True, slots=True)
class IgnoredField:
    """A field git and the server disagree on, left out by environment.yaml's ``ignore:``."""

    kind: str
    name: str
    version: int | None
    path: str  # concrete: tasks[ref=charge].inputParameters.x
    reason: str = ""  # the ignore: entry's


@dataclass(frozen=True, slots=True)
class Plan:
    environment: str
    server: str
    flavour: str
    changes: tuple[Change, ...]
    unmanaged: tuple[Unmanaged, ...] = ()
    warnings: tuple[Problem, ...] = ()
    #: why apply refuses this plan as a whole (an empty desired set, more deletes than maxDeletes)
    refusals: tuple[Problem, ...] = ()
    #: the project's name (its mark and lock) and where it comes from
    project: tuple[str, str] | None = None
    #: fields that differ, left out by environment.yaml's ignore: (the server's value is kept)
    ignored: tuple[IgnoredField, ...] = ()

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def pending(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action != "noop")

    @property
    def has_changes(self) -> bool:
        return bool(self.pending)


#: unknown: the request went out and no answer came back (the read-back settles it when it can)
#: not applied: never sent (the run was interrupted before it)
Landing = Literal["landed", "not landed", "unknown", "not applied"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one change when apply ran it."""

    change: Change
    status: Landing
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True, slots=True)
class Cell:
    """One resource in one environment."""

    state: (
        str  # in-sync | drifted | missing | unknown (server unreachable) | absent (not in git here)
    )
    fingerprint: str | None
    pending: bool  # the environment it is promoted from runs something else


@dataclass(frozen=True)
class StatusMatrix:
    environments: tuple[str, ...]
    servers: Mapping[str, str]
    rows: tuple[tuple[tuple[str, str, int | None], Mapping[str, Cell]], ...]
