"""`metasync status`: each resource in each environment."""

from __future__ import annotations

from collections.abc import Sequence

from metasync.errors import ServerError
from metasync.manifests.environment import load_environment
from metasync.model.fingerprint import canonical_json
from metasync.operations.plan import plan as make_plan
from metasync.plan.model import Cell, StatusMatrix
from metasync.project import Project


def status(project: Project, envs: Sequence[str] = ()) -> StatusMatrix:
    """Each resource in each environment: in sync, drifted, missing, or waiting for promotion."""
    names = list(envs) or project.environments
    cells: dict[tuple[str, str, int | None], dict[str, Cell]] = {}
    servers: dict[str, str] = {}
    for env in names:
        upstream = _upstream(project, env)
        try:
            planned = make_plan(project, env)
            desired = planned.desired
            servers[env] = planned.plan.server
            states = {(c.kind, c.name, c.version): c for c in planned.plan.changes}
        except ServerError as exc:
            desired = project.render(env)
            servers[env] = f"unreachable: {exc.problem.message}"
            states = {}
        for resource in desired.resources:
            change = states.get(resource.key)
            state = {"noop": "in-sync", "update": "drifted", "create": "missing"}.get(
                change.action if change else "", "unknown"
            )
            pending = upstream is not None and (
                resource.key not in upstream
                or canonical_json(upstream[resource.key]) != canonical_json(resource.spec)
            )
            fingerprint = change.desired_fingerprint if change else None
            cells.setdefault(resource.key, {})[env] = Cell(state, fingerprint, pending)
        for key in upstream or {}:
            if key not in {r.key for r in desired.resources}:
                cells.setdefault(key, {})[env] = Cell("absent", None, True)
    rows = sorted(cells.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or 0))
    return StatusMatrix(tuple(names), servers, tuple(rows))


def _upstream(project: Project, env: str) -> dict[tuple[str, str, int | None], object] | None:
    """``env``'s resources as they would be after promoting from its promotion.from."""
    environment = load_environment(project.root, env, connect=False)
    source = environment.config.promotion.from_
    if not source:
        return None
    origin = load_environment(project.root, source, connect=False)
    pin = origin.config.promotion.ref
    desired = project.render(env, pin=pin) if pin else project.desired(env, worktree=True)
    return {r.key: r.spec for r in desired.resources}
