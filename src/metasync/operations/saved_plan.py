"""`metasync plan --out` and `metasync apply PLAN`: the plan as reviewed, and applying no more than it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from metasync.apply.lease import Lease
from metasync.apply.steps import Step
from metasync.errors import ConfigError, Location
from metasync.manifests.gitref import head_commit
from metasync.operations.apply import Applied, apply
from metasync.operations.changed import desired_fingerprint
from metasync.operations.lock import locked
from metasync.operations.plan import Planned
from metasync.operations.plan import plan as make_plan
from metasync.plan.saved import SAVED_KIND, Refusal, SavedPlan, reconcile
from metasync.project import Project
from metasync.render.plan_json import plan_document


def saved_document(project: Project, planned: Planned) -> dict[str, Any]:
    """The plan as reviewed (no secret values) with its commit, its server and the fingerprint of
    the environment's desired state, for `apply PLAN`."""
    return {
        "kind": SAVED_KIND,
        **plan_document(planned.plan),
        "commit": head_commit(project.root),
        "desiredFingerprint": desired_fingerprint(project, planned.plan.environment),
    }


def save_plan(project: Project, planned: Planned, path: Path) -> None:
    """`plan --out`: :func:`saved_document`, written to ``path``."""
    document = saved_document(project, planned)
    try:
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the plan: {exc.strerror}", location=Location(str(path))
        ) from None


def apply_saved(project: Project, path: Path, on_step: Callable[[Step], None] | None = None, *,
                force: bool = False, partial: bool = False) -> SavedApply:  # fmt: skip
    """Apply what a saved plan reviewed. When this checkout renders the environment otherwise than
    the plan's commit did, nothing is applied (not even the lock is taken). When any object's
    baseline moved since the review, nothing is applied and each such object is named.
    ``partial`` applies the reviewed changes that still hold, object by object."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the saved plan: {exc}", location=Location(str(path)),
            hint="Pass the file written by `metasync plan --out FILE`.",
        ) from None  # fmt: skip
    return apply_saved_document(project, document, str(path), on_step, force=force,
                                partial=partial)  # fmt: skip


def apply_saved_document(project: Project, document: Any, path: str,
                         on_step: Callable[[Step], None] | None = None, *, force: bool = False,
                         partial: bool = False) -> SavedApply:  # fmt: skip
    """:func:`apply_saved` of a saved plan read already (``path``: where it came from)."""
    saved = SavedPlan.from_document(document, path)
    if not partial:
        _check_tree(project, saved, path)
    with locked(project, saved.environment, "apply PLAN") as lease:
        result = _apply_saved(project, saved, path, on_step, force=force, partial=partial)
    return replace(result, lease=lease)


def _check_tree(project: Project, saved: SavedPlan, path: str) -> None:
    """Refuse a plan whose environment this checkout renders differently: a merge commit may
    differ from the commit reviewed, the environment's desired state may not."""
    env = saved.environment
    if saved.desired_fingerprint is None:
        return  # saved before plans recorded it: the object-by-object checks still hold
    if desired_fingerprint(project, env) == saved.desired_fingerprint:
        return
    here = head_commit(project.root)
    raise ConfigError(
        f"the plan for {env} was made {_at(saved.commit)}, but this checkout "
        f"({f'HEAD {here[:7]}' if here else 'outside git'}) has another desired state for {env}: "
        "what was reviewed is not what would land, so nothing was applied",
        location=Location(path),
        hint=f"Plan again on this commit and review that plan "
        f"(metasync plan --env {env} --out {path}).",
    )


def _at(commit: str | None) -> str:
    return f"at commit {commit[:7]}" if commit else "outside git"


def _apply_saved(project: Project, saved: SavedPlan, path: str,
                 on_step: Callable[[Step], None] | None, *, force: bool,
                 partial: bool) -> SavedApply:  # fmt: skip
    # what the plan's server checks passed is not sent to the server again: the changes kept
    # are those still as reviewed, on the same server (a refusal now is a write that fails)
    fresh = make_plan(project, saved.environment, checked=saved.checked, detail=False)
    if fresh.plan.server != saved.server:
        raise ConfigError(
            f"the plan was made against {saved.server}, but {saved.environment} now points at "
            f"{fresh.plan.server}",
            location=Location(str(path)),
            hint="Plan again against the current server.",
        )
    keep, refused = reconcile(saved, fresh.plan)
    if refused and not partial:  # stale: the reviewed plan is not what would land
        return SavedApply(Applied((), ()), refused, saved, withheld=True)
    subset = replace(fresh, plan=replace(fresh.plan, changes=keep))
    applied = apply(project, subset, on_step, force=force) if keep else Applied((), ())
    return SavedApply(applied, refused, saved)


@dataclass(frozen=True)
class SavedApply:
    applied: Applied
    refused: tuple[Refusal, ...]
    saved: SavedPlan
    lease: Lease | None = None
    #: nothing applied: objects moved since the review (and --partial was not given)
    withheld: bool = False

    @property
    def ok(self) -> bool:
        return self.applied.ok and not self.refused
