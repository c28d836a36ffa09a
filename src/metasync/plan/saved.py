"""Saved plans (``plan --out``): what was reviewed, and what may still be applied of it.

A saved plan is the JSON plan (formatVersion 1, no secret values) plus the git commit and the server
it was made against, and the fingerprint of the environment's whole desired state at that commit
(``desiredFingerprint``; plans saved before it was recorded have none). Applying it first checks that
the checkout renders the environment the same (the tree reviewed is the tree applied), then re-plans, then keeps only the reviewed changes whose live object
and desired state still have the fingerprints the plan recorded; every other change is refused by
name (its baseline moved: plan again). Nothing that was not reviewed is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from metasync.errors import MetasyncError
from metasync.model.kinds import KINDS
from metasync.plan.model import Change, Plan

SAVED_KIND = "metasync-plan"
Key = tuple[str, str, int | None]


@dataclass(frozen=True, slots=True)
class Reviewed:
    key: Key
    action: str
    live_fingerprint: str | None
    desired_fingerprint: str | None
    #: the plan blocked it (protected, in use, or the server could not check it)
    blocked: bool = False


@dataclass(frozen=True)
class SavedPlan:
    environment: str
    server: str
    commit: str | None
    reviewed: tuple[Reviewed, ...]
    #: the environment's desired state when planned (operations/changed.py); None in older plans
    desired_fingerprint: str | None = None

    @property
    def checked(self) -> dict[Key, tuple[str | None, str | None]]:
        """The reviewed changes the server checked when the plan was made (every one it did not
        block: one it could not check is blocked), with their fingerprints then."""
        return {
            item.key: (item.live_fingerprint, item.desired_fingerprint)
            for item in self.reviewed
            if not item.blocked and item.action != "delete"
        }

    @classmethod
    def from_document(cls, document: Any, where: str) -> SavedPlan:
        if (
            not isinstance(document, Mapping)
            or document.get("kind") != SAVED_KIND
            or document.get("formatVersion") != 1
        ):
            raise MetasyncError(
                f"{where} is not a metasync saved plan (formatVersion 1)",
                hint="Make one with `metasync plan --env ENV --out FILE`.",
            )
        try:
            saved = _Document.model_validate(document)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
            raise MetasyncError(
                f"{where} is damaged: {at.lstrip('.')}: {first['msg']}",
                hint="Plan again (metasync plan --env ENV --out FILE), and review that plan.",
            ) from None
        reviewed = tuple(
            Reviewed(
                (c.kind, c.name, c.version),
                c.action,
                c.liveFingerprint,
                c.desiredFingerprint,
                c.blocked is not None,
            )
            for c in saved.changes
            if c.action != "noop"
        )
        return cls(
            saved.environment, saved.server, saved.commit, reviewed, saved.desiredFingerprint
        )


class _Change(BaseModel):
    model_config = ConfigDict(strict=True)

    kind: str
    name: str
    version: int | None
    action: Literal["create", "update", "delete", "noop"]
    liveFingerprint: str | None
    desiredFingerprint: str | None
    blocked: str | None = None

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
        return kind


class _Document(BaseModel):
    """What apply PLAN reads of a saved plan; anything else in it is for people."""

    model_config = ConfigDict(strict=True)

    environment: str = Field(min_length=1)
    server: str
    commit: str | None = None
    desiredFingerprint: str | None = None
    changes: list[_Change]


@dataclass(frozen=True, slots=True)
class Refusal:
    key: Key
    reason: str


def reconcile(saved: SavedPlan, fresh: Plan) -> tuple[tuple[Change, ...], tuple[Refusal, ...]]:
    """The reviewed changes that still hold (taken from ``fresh``), and the refused ones."""
    now = {(c.kind, c.name, c.version): c for c in fresh.changes}
    keep: list[Change] = []
    refused: list[Refusal] = []
    for item in saved.reviewed:
        change = now.get(item.key)
        if change is None:
            refused.append(Refusal(item.key, "it is no longer in the desired state"))
        elif change.action == "noop" and change.desired_fingerprint == item.desired_fingerprint:
            continue  # the server holds what was reviewed already (this plan applied before?)
        elif change.live_fingerprint != item.live_fingerprint:
            refused.append(Refusal(item.key, "it changed on the server since the plan was made"))
        elif change.desired_fingerprint != item.desired_fingerprint:
            refused.append(Refusal(item.key, "its manifests changed since the plan was made"))
        elif change.action == "noop":
            continue  # someone already made the server match: nothing to do
        else:
            keep.append(change)
    return tuple(keep), tuple(refused)
