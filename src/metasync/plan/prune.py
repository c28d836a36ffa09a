"""Prune (docs/environments.md, policy.prune): delete what metasync wrote and git no longer names. Pure.

Only objects carrying this project's ownership mark are candidates (the planner decides that).
A candidate is planned as a delete, but *blocked* (apply skips it unless --force, and says why)
when a ``policy.protect`` glob matches it, or when something that stays on the server still names
it (each kind says what its objects name, model/kinds/: a workflow its tasks' definitions, its
sub-workflows and failure workflow; an event handler the workflows it starts). Running executions
are looked up by the caller (they need the server) and added with ``with_running``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any

from metasync.conductor.live import LiveState
from metasync.conductor.normalize import normalize
from metasync.manifests.environment import Policy
from metasync.model.fingerprint import fingerprint
from metasync.model.kinds import KINDS
from metasync.model.resource import Resource
from metasync.plan.model import Change, Plan

Key = tuple[str, str, int | None]


def protected(name: str, policy: Policy, verb: str) -> str | None:
    """Why ``name`` may not be deleted / overwritten without --force, if a protect glob holds it."""
    for pattern in policy.protect:
        if fnmatchcase(name, pattern):
            return f"protected by policy.protect {pattern!r}: not {verb} without --force"
    return None


def prune_changes(candidates: Sequence[Key], live: LiveState, desired: Sequence[Resource],
                  policy: Policy, mask: Callable[[Any], Any] | None = None) -> list[Change]:  # fmt: skip
    """A delete per candidate, blocked when protected or still used by what stays.

    What stays is judged as the server will be after the apply: a live object that the desired
    state rewrites counts as its desired version (a rollback that restores a workflow to a
    version without the task frees the task definition the same rollback deletes)."""
    leaving = set(candidates)
    rewritten = {r.key for r in desired}
    staying: list[tuple[str, str, Mapping[str, Any]]] = [
        (kind, f"{kind} {name}" + (f" v{version}" if version is not None else ""), spec)
        for (kind, name, version), spec in live.objects.items()
        if (kind, name, version) not in leaving and (kind, name, version) not in rewritten
    ]
    staying += [(r.kind, f"{r.title} (in git)", r.spec) for r in desired]
    remaining_versions: dict[tuple[str, str], set[int]] = {}
    for kind, name, version in [*live.objects, *(r.key for r in desired)]:
        if (kind, name, version) not in leaving and version is not None:
            remaining_versions.setdefault((kind, name), set()).add(version)
    changes = []
    for key in candidates:
        kind, name, version = key
        current = live.objects[key]
        users = _users(key, staying, remaining_versions)
        blocked = protected(name, policy, "deleted") or (
            f"still used by {_listing(users)}: not deleted without --force" if users else None
        )
        changes.append(Change(
            kind, name, version, "delete",
            live_fingerprint=fingerprint((mask or _same)(normalize(kind, current, live.flavour))),
            reason="written by metasync, no longer in git (policy.prune)",
            live=current, blocked=blocked,
        ))  # fmt: skip
    return changes


def _same(value: Any) -> Any:
    return value


def with_running(plan: Plan, running: Mapping[Key, Sequence[str]]) -> Plan:
    """Block the deletes of workflow versions that have running executions; note the updates."""
    changes = []
    for change in plan.changes:
        ids = running.get((change.kind, change.name, change.version), ())
        if ids and change.action == "delete":
            why = f"{_count(ids)} running (e.g. {ids[0]}): not deleted without --force"
            changes.append(replace(change, blocked=_join(change.blocked, why)))
        elif ids and change.action == "update":
            note = (f"{_count(ids)} running: each keeps the definition it started with; new "
                    "executions get the update")  # fmt: skip
            changes.append(replace(change, note=note))
        else:
            changes.append(change)
    return replace(plan, changes=tuple(changes))


def hold_back(plan: Plan, why: Mapping[Key, str],
              actions: Sequence[str] = ("create", "update", "delete")) -> Plan:  # fmt: skip
    """The plan with the changes named in ``why`` (of ``actions``) blocked, with the reason: kept
    out of the apply (the server could not check them this run, say)."""
    if not why:
        return plan
    changes = tuple(
        replace(c, blocked=_join(c.blocked, why[c.key])) if c.key in why and c.action in actions
        else c
        for c in plan.changes
    )  # fmt: skip
    return replace(plan, changes=changes)


def _count(ids: Sequence[str]) -> str:
    return f"{len(ids)} execution{'s' if len(ids) != 1 else ''}"


def _join(first: str | None, second: str) -> str:
    return f"{first}; {second}" if first else second


def _listing(users: Sequence[str], shown: int = 3) -> str:
    more = f" and {len(users) - shown} more" if len(users) > shown else ""
    return ", ".join(users[:shown]) + more


def _users(key: Key, staying: Iterable[tuple[str, str, Mapping[str, Any]]],
           remaining: Mapping[tuple[str, str], set[int]]) -> list[str]:  # fmt: skip
    """What of ``staying`` names ``key`` (each kind says what its objects name): a reference
    without a version names the newest, so it holds ``key`` only when no other version stays."""
    kind, name, version = key
    users: list[str] = []
    for user_kind, title, spec in staying:
        for ref in KINDS[user_kind].references(spec):
            if ref.kind != kind or ref.name != name:
                continue
            if (
                version is None
                or ref.version == version
                or (ref.version is None and not remaining.get((kind, name)))
            ):
                users.append(f"{title} ({ref.via})" if ref.via else title)
                break
    return users
