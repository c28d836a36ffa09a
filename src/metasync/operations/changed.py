"""`metasync changed`: the environments a change to git touches."""

from __future__ import annotations

from metasync.errors import MetasyncError, redact_url
from metasync.manifests.environment import load_environment
from metasync.manifests.gitref import checkout_at
from metasync.manifests.loader import MANIFESTS_DIR
from metasync.model.fingerprint import canonical_json, fingerprint
from metasync.project import Project


def changed(project: Project, base: str) -> list[str]:
    """The environments whose desired state (or server) differs between ``base`` and the
    working tree: what a pull request must plan, what a merge must apply."""
    now = {env: _fingerprint_or_error(project, env) for env in project.environments}
    with checkout_at(project.root, base) as old_root:
        old = Project(old_root) if (old_root / MANIFESTS_DIR).is_dir() else None
        before = {env: _fingerprint_or_error(old, env) for env in old.environments} if old else {}
    return [env for env in sorted(now) if before.get(env) != now[env]]


def desired_fingerprint(project: Project, env: str) -> str:
    """One fingerprint of what ``env`` would run as this checkout renders it: its resources (secret
    values as their placeholders) and its server (any password in the URL masked, for a saved plan
    publishes it). Raises what stops ``env`` from rendering."""
    desired = project.render(env)
    server = load_environment(project.root, env, connect=False).config.server.url
    return fingerprint([redact_url(server), sorted(
        ((r.kind, r.name, r.version or 0), canonical_json(r.spec)) for r in desired.resources
    )])  # fmt: skip


def _fingerprint_or_error(project: Project, env: str) -> str:
    try:
        return desired_fingerprint(project, env)
    except MetasyncError as exc:
        return f"invalid: {exc}"  # an environment that does not render has changed too
