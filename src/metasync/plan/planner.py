"""Desired resources + live state -> Plan. Fingerprints first; field diffs only for changed objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from metasync.conductor.live import LiveState
from metasync.conductor.normalize import Unknown, normalize
from metasync.errors import Location, Problem
from metasync.manifests.secrets import SENSITIVE, Secrets
from metasync.model.fingerprint import canonical_json, fingerprint
from metasync.model.kinds import KINDS
from metasync.model.paths import display_path
from metasync.model.resource import Resource
from metasync.plan.diff import diff
from metasync.plan.model import Change, FieldChange, Plan, Unmanaged
from metasync.plan.select import Selector, selected


def build_plan(environment: str, desired: Sequence[Resource], live: LiveState,
               selectors: Sequence[Selector] = (), *, secrets: Secrets | None = None,
               mark: str | None = None) -> Plan:  # fmt: skip
    changes: list[Change] = []
    warnings: list[Problem] = []
    labels: dict[tuple[str, str, int | None], Mapping[str, str]] = {}
    for resource in desired:
        labels[resource.key] = resource.labels
        if not selected(selectors, resource.kind, resource.name, resource.labels):
            continue
        unknown: list[Unknown] = []
        spec = secrets.resolve(resource.spec) if secrets is not None else resource.spec
        wanted = normalize(resource.kind, spec, live.flavour, unknown)
        warnings += [_unknown_warning(resource, u, live.flavour) for u in unknown]
        wanted_fp = fingerprint(wanted)
        current = live.objects.get(resource.key)
        if current is None:
            changes.append(Change(
                resource.kind, resource.name, resource.version, "create",
                _masked(diff(resource.kind, {}, normalize(resource.kind, spec, live.flavour, fill=False)), secrets),
                desired_fingerprint=wanted_fp, reason="not on the server",
                desired=spec,
            ))  # fmt: skip
            continue
        have = normalize(resource.kind, current, live.flavour)
        have_fp = fingerprint(have)
        if have_fp == wanted_fp:
            changes.append(Change(
                resource.kind, resource.name, resource.version, "noop",
                live_fingerprint=have_fp, desired_fingerprint=wanted_fp,
                desired=spec, live=current,
            ))  # fmt: skip
            continue
        fields = _masked(diff(resource.kind, have, wanted), secrets)
        changes.append(Change(
            resource.kind, resource.name, resource.version, "update", fields,
            have_fp, wanted_fp, reason=f"{len(fields)} field(s) differ",
            desired=spec, live=current,
        ))  # fmt: skip
    unmanaged = [
        Unmanaged(*key, owned=mark is not None and live.objects[key].get("ownerApp") == mark)
        for key in sorted(live.objects, key=_order)
        if key not in labels and selected(selectors, key[0], key[1], {})
    ]
    changes.sort(key=lambda c: _order((c.kind, c.name, c.version)))
    return Plan(
        environment, live.server, live.flavour, tuple(changes), tuple(unmanaged), tuple(warnings)
    )


def _masked(fields: Sequence[FieldChange], secrets: Secrets | None) -> tuple[FieldChange, ...]:
    """No secret value in a plan: values become placeholders, and what the server holds where git
    has a secret (an old value after a rotation, say) becomes ``(sensitive)``."""
    if secrets is None or not secrets.values:
        return tuple(fields)
    masked = []
    for field in fields:
        before, after = secrets.mask(field.before), secrets.mask(field.after)
        if before is not None and after is not None and "((secrets." in canonical_json(after):
            before = SENSITIVE if before != after else before
        masked.append(FieldChange(field.path, before, after))
    return tuple(masked)


def _order(key: tuple[str, str, int | None]) -> tuple[int, str, int]:
    return (KINDS[key[0]].order, key[1], key[2] or 0)


def _unknown_warning(resource: Resource, unknown: Unknown, flavour: str) -> Problem:
    path = (*unknown.path, unknown.field)
    display = display_path(resource.spec, path)
    origin = resource.origin
    location = origin.locate(path, display) if origin else Location(resource.title, None, display)
    return Problem(
        f"{unknown.field} is not known to this server (Conductor {flavour}), which drops it on "
        "write: it is left out of the plan",
        location,
        "Remove it, or keep it for environments that run conductor-oss 3.21 or newer.",
        "warning",
    )
