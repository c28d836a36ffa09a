"""Desired resources + live state -> Plan. Fingerprints first; field diffs only for changed objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from metasync.bulk import no_cycles
from metasync.conductor.live import LiveState
from metasync.conductor.normalize import Flavour, Unknown, normalize
from metasync.errors import Location, Problem
from metasync.manifests.environment import Policy
from metasync.manifests.secrets import SENSITIVE, Secrets
from metasync.model.fingerprint import canonical_json, fingerprint
from metasync.model.flavour import FLAVOUR_NAMES
from metasync.model.kinds import KINDS
from metasync.model.paths import display_path
from metasync.model.resource import Resource
from metasync.plan.diff import diff, tasks_by_ref
from metasync.plan.ignore import Rule, differing, keep_live, rules_for, without
from metasync.plan.memo import FingerprintMemo
from metasync.plan.model import Change, FieldChange, IgnoredField, Plan, Unmanaged
from metasync.plan.prune import protected as _protected
from metasync.plan.prune import prune_changes
from metasync.plan.select import Selector, selected
from metasync.plan.versions import Same, Versions

#: a desired resource -> the secrets it names and its spec_digest (plan/memo.py); None: not known
Facts = Callable[[Resource], "tuple[frozenset[str], bytes | None] | None"]


def build_plan(environment: str, desired: Sequence[Resource], live: LiveState,
               selectors: Sequence[Selector] = (), *, secrets: Secrets | None = None,
               mark: str | None = None, policy: Policy | None = None,
               ignore: Sequence[Rule] = (), memo: FingerprintMemo | None = None,
               facts: Facts | None = None, detail: bool = True) -> Plan:  # fmt: skip
    """What apply would change. ``mark`` tells objects metasync wrote; ``policy`` (the
    environment's) decides versioning and pruning; without one: in place, no prune. ``ignore``
    leaves fields other systems manage out (plan/ignore.py). ``memo`` remembers fingerprints of
    unchanged objects between plans (plan/memo.py); ``facts`` tells, of a desired resource,
    the secrets it names and its ``spec_digest`` when known (worked out with the render).
    ``detail=False``: a create carries no fields (a plan nobody reads field by field: apply
    PLAN's, the read-back's; 2,000 new workflows: a second of normalizing them for showing)."""
    with no_cycles():  # thousands of canonical forms and changes, no cycles among them
        return _build_plan(environment, desired, live, selectors, secrets=secrets, mark=mark,
                           policy=policy, ignore=ignore, memo=memo, facts=facts,
                           detail=detail)  # fmt: skip


def _build_plan(environment: str, desired: Sequence[Resource], live: LiveState,
                selectors: Sequence[Selector], *, secrets: Secrets | None, mark: str | None,
                policy: Policy | None, ignore: Sequence[Rule], memo: FingerprintMemo | None,
                facts: Facts | None, detail: bool) -> Plan:  # fmt: skip
    policy = policy or Policy()
    changes: list[Change] = []
    warnings: list[Problem] = []
    ignored: list[IgnoredField] = []
    labels: dict[tuple[str, str, int | None], Mapping[str, str]] = {}
    chosen = [r for r in desired if selected(selectors, r.kind, r.name, r.labels)]
    for resource in desired:
        labels[resource.key] = resource.labels
    versions = Versions(live.objects, chosen, _same(live.flavour, secrets, ignore, memo, live)
                        if policy.versioning == "new-version" else None)  # fmt: skip
    for resource in versions.resources:
        labels[resource.key] = resource.labels
        unknown: list[Unknown] = []
        known = facts(resource) if facts is not None else None
        names, digest = known if known is not None else (None, None)
        spec = resource.spec
        if secrets is not None and names != frozenset():  # none named: nothing to put in
            spec = secrets.resolve(spec)
        current = live.objects.get(resource.key)
        live_state = () if policy.manageLiveState else KINDS[resource.kind].live_state
        if live_state and current is not None:  # the server's own: kept as it is
            spec = {k: v for k, v in spec.items() if k not in live_state}
            spec |= {k: current[k] for k in live_state if k in current}
        previous = versions.previous.get(resource.key)
        paths = rules_for(ignore, resource.kind, resource.name)
        # what the server holds of it: this version, or (a new version) the one it follows
        server = current if current is not None or previous is None else live.objects[previous]
        same = None
        if memo is not None and current is not None and not paths:
            same = memo.same(resource.kind, live.flavour, live_state, spec, current,
                             digest=digest if spec is resource.spec else None,
                             listed=live.digests.get(resource.key))  # fmt: skip
        if same is not None:  # unchanged since a plan that normalized both sides
            changes.append(Change(
                resource.kind, resource.name, resource.version, "noop", live_fingerprint=same,
                desired_fingerprint=same, desired=spec, live=current,
            ))  # fmt: skip
            continue
        if paths and server is not None:  # fields others manage: the server's value is kept
            ignored += _ignored(resource, ignore, normalize(resource.kind, spec, live.flavour),
                                normalize(resource.kind, server, live.flavour))  # fmt: skip
            spec = keep_live(spec, server, paths)
        # a new object git renders as before: its fingerprint is known, not worked out again
        # (apply PLAN plans what the plan found; its read-back compares what was written)
        new = (
            digest
            if memo is not None and spec is resource.spec and current is None
            and previous is None and not paths
            else None
        )  # fmt: skip
        known_fp = (
            memo.created(live.flavour, live_state, new)
            if memo is not None and new is not None
            else None
        )
        if known_fp is not None:
            wanted: dict[str, Any] = {}  # not needed: a create shows the spec itself
            wanted_fp = known_fp
        else:
            wanted = _without(
                without(normalize(resource.kind, spec, live.flavour, unknown), paths), live_state
            )
            warnings += [_unknown_warning(resource, u, live.flavour) for u in unknown]
            wanted_fp = _fingerprint(wanted, secrets)
            if memo is not None and new is not None and not unknown:
                plain = fingerprint(wanted) if secrets is not None and secrets.values else wanted_fp
                memo.found_created(live.flavour, live_state, new, wanted_fp, plain)
        if current is None and previous is not None:
            base = without(normalize(resource.kind, live.objects[previous], live.flavour), paths)
            found = diff(resource.kind, base, {**wanted, "version": previous[2]})
            changes.append(Change(
                resource.kind, resource.name, resource.version, "create", _masked(found, secrets),
                _fingerprint(base, secrets), wanted_fp, desired=spec, previous_version=previous[2],
                shown=_masked(_as_written(resource.kind, found, live.objects[previous], spec,
                                          live.flavour), secrets),
                reason=f"new version (policy new-version): v{previous[2]} stays",
            ))  # fmt: skip
            continue
        if current is None and not detail:
            changes.append(Change(
                resource.kind, resource.name, resource.version, "create",
                desired_fingerprint=wanted_fp, reason="not on the server", desired=spec,
            ))  # fmt: skip
            continue
        if current is None:
            changes.append(Change(
                resource.kind, resource.name, resource.version, "create",
                _masked(diff(resource.kind, {}, normalize(resource.kind, spec, live.flavour, fill=False)), secrets),
                desired_fingerprint=wanted_fp, reason="not on the server",
                desired=spec,
                shown=_masked(diff(resource.kind, {}, _written(resource.kind, spec, live.flavour)), secrets),
            ))  # fmt: skip
            continue
        have = _without(without(normalize(resource.kind, current, live.flavour), paths), live_state)
        have_fp = _fingerprint(have, secrets)
        if have_fp == wanted_fp:
            changes.append(Change(
                resource.kind, resource.name, resource.version, "noop",
                live_fingerprint=have_fp, desired_fingerprint=wanted_fp,
                desired=spec, live=current,
            ))  # fmt: skip
            continue
        found = diff(resource.kind, have, wanted)
        fields = _masked(found, secrets)
        changes.append(Change(
            resource.kind, resource.name, resource.version, "update", fields,
            have_fp, wanted_fp, reason=f"{len(fields)} field(s) differ",
            shown=_masked(_as_written(resource.kind, found, current, spec, live.flavour), secrets),
            desired=spec, live=current, blocked=_protected(resource.name, policy, "overwritten"),
        ))  # fmt: skip
    leftover = sorted(
        (key for key in live.objects
         if key not in labels and key not in versions.history
         and selected(selectors, key[0], key[1], {})),
        key=_order,
    )  # fmt: skip
    owned = [k for k in leftover if live.owned(k, mark)]
    unmanaged = [Unmanaged(*key, owned=key in owned) for key in leftover]
    refusals: list[Problem] = []
    if policy.prune and owned:
        deletes = list(owned)
        unmanaged = [u for u in unmanaged if not u.owned]
        changes += prune_changes(deletes, live, [*versions.resources], policy,
                                 mask=secrets.mask if secrets is not None else None)  # fmt: skip
        if not chosen:
            refusals.append(Problem(
                f"prune would delete {len(deletes)} object(s) and git names nothing for "
                f"{environment}{' in this selection' if selectors else ''}: metasync never prunes "
                "when the desired set is empty",
                hint="Check that manifests/ (at the environment's promotion.ref) is what you mean; "
                "to empty a server, delete by hand.",
            ))  # fmt: skip
        elif len(deletes) > policy.maxDeletes:
            refusals.append(Problem(
                f"prune would delete {len(deletes)} object(s), more than policy.maxDeletes "
                f"({policy.maxDeletes}): nothing is applied",
                hint="Review the deletes; if they are meant, raise policy.maxDeletes in the "
                "environment's environment.yaml (or prune in smaller steps with --select).",
            ))  # fmt: skip
    changes.sort(key=lambda c: _order((c.kind, c.name, c.version)))
    return Plan(
        environment, live.server, live.flavour, tuple(changes), tuple(unmanaged),
        tuple(warnings), tuple(refusals), ignored=tuple(ignored),
    )  # fmt: skip


def _ignored(resource: Resource, ignore: Sequence[Rule], ours: Mapping[str, Any],
             theirs: Mapping[str, Any]) -> list[IgnoredField]:  # fmt: skip
    """The fields git and the server disagree on that ``ignore`` leaves out; a field two entries
    name counts once, with the first one's reason."""
    found: dict[str, IgnoredField] = {}
    for rule in (r for r in ignore if r.matches(resource.kind, resource.name)):
        for path in differing(ours, theirs, [rule.field_path]):
            found.setdefault(path, IgnoredField(resource.kind, resource.name, resource.version,
                                                path, rule.reason))  # fmt: skip
    return list(found.values())


def _written(kind: str, spec: Mapping[str, Any], flavour: Flavour) -> dict[str, Any]:
    """``spec`` as its author wrote it, for showing: what the server would drop left out, the
    values it states kept, those equal to the server's defaults included (``retryCount: 3``)."""
    return normalize(kind, spec, flavour, fill=False, keep_defaults=True)


def _as_written(kind: str, fields: Sequence[FieldChange], live: Mapping[str, Any],
                spec: Mapping[str, Any], flavour: Flavour) -> list[FieldChange]:  # fmt: skip
    """``fields`` with each inserted task as git states it and each removed task as the server
    holds it without the defaults it fills in (the canonical forms carry every default)."""
    if not KINDS[kind].keyed_tasks:
        return list(fields)
    old = tasks_by_ref(normalize(kind, live, flavour, fill=False))
    new = tasks_by_ref(_written(kind, spec, flavour))
    out = []
    for field in fields:
        ref = field.path.removeprefix("tasks[ref=").removesuffix("]")
        whole = f"tasks[ref={ref}]" == field.path
        if whole and field.before is None and ref in new:
            out.append(FieldChange(field.path, None, new[ref]))
        elif whole and field.after is None and ref in old:
            out.append(FieldChange(field.path, old[ref], None))
        else:
            out.append(field)
    return out


def _without(spec: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """``spec`` without ``fields`` (live state, when git does not decide it)."""
    return {k: v for k, v in spec.items() if k not in fields} if fields else spec


def _same(flavour: Flavour, secrets: Secrets | None, ignore: Sequence[Rule] = (),
          memo: FingerprintMemo | None = None, live: LiveState | None = None) -> Same:  # fmt: skip
    """Would writing ``spec`` leave ``current`` as it is? With ``memo``: known from an earlier
    plan where both are as they were then (``live``'s digests name the server's side)."""
    listed: dict[int, Any] | None = None

    def same(kind: str, spec: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
        nonlocal listed
        resolved = secrets.resolve(spec) if secrets is not None else spec
        paths = rules_for(ignore, kind, str(spec.get("name")))
        if memo is not None and live is not None and not paths:
            if listed is None:  # the digest of each listed object, by the object
                listed = {id(live.objects[k]): d for k, d in live.digests.items()}
            known = memo.same(kind, flavour, (), resolved, current, listed=listed.get(id(current)))
            if known is not None:
                return True
        wanted = without(normalize(kind, resolved, flavour), paths)
        return fingerprint(wanted) == fingerprint(without(normalize(kind, current, flavour), paths))

    return same


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
        f"{unknown.field} is not known to this server ({FLAVOUR_NAMES.get(flavour, flavour)}), which drops it on "
        "write: it is left out of the plan",
        location,
        "Remove it, or keep it for environments that run conductor-oss 3.21 or newer.",
        "warning",
        "field-unknown-to-server",
    )


def _fingerprint(value: Any, secrets: Secrets | None) -> str:
    """The fingerprint of ``value`` with every secret as its placeholder: fingerprints are
    published (plan JSON, the ownerApp stamp on the server), and must confirm no guess of a
    secret. A value the server holds that is not the current secret still counts as different."""
    return fingerprint(secrets.mask(value) if secrets is not None else value)
