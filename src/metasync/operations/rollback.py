"""`metasync rollback` and `metasync history`: an environment put back to an earlier revision.

The state after revision K is, for each object a later revision touched, the before-image the
first of those later revisions recorded; objects first created after K are deleted. So rolling
back needs only the before-images each revision keeps, and a rollback is a revision itself: run
twice, the second finds the state already restored and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from metasync.apply import history
from metasync.apply.backup import Backup, cached
from metasync.apply.backup import find as find_backup
from metasync.apply.backup import folder as backup_folder
from metasync.apply.backup import load as load_backup
from metasync.apply.backup import newest as newest_backup
from metasync.conductor.client import ConductorClient
from metasync.conductor.live import read_live
from metasync.errors import ConfigError, Location, Problem
from metasync.manifests.environment import Policy, load_environment
from metasync.manifests.secrets import Secrets, used_secrets
from metasync.model.resource import Resource
from metasync.operations.apply import Restoring
from metasync.operations.plan import Planned, with_executions
from metasync.plan.planner import build_plan
from metasync.plan.prune import prune_changes
from metasync.project import Desired, Project

Key = tuple[str, str, int | None]


@dataclass(frozen=True)
class Listing:
    environment: str
    server: str
    history: history.History


def list_history(project: Project, env: str) -> Listing:
    """``env``'s revisions, oldest first, as its server keeps them."""
    with project.connect(env) as client:
        return Listing(env, client.url, history.read(client, project.history_name(env)))


def rollback_plan(project: Project, env: str, name: str | None = None,
                  to: int | None = None) -> tuple[Planned, Restoring]:  # fmt: skip
    """Restoring revision ``to``'s state (default: undo the newest apply; after a rollback,
    the state it restored), or backup file ``name``'s before-images, as a plan."""
    environment = load_environment(project.root, env)
    skipped: list[Problem] = []
    with project.connect(env) as client:
        live = read_live(client)
        if name is not None:
            backup = load_backup(find_backup(backup_folder(project.root, env), env, name))
            objects, restoring = _from_file(backup, env, live.server)
        else:
            past = history.read(client, project.history_name(env))
            if past.revisions:
                objects, restoring = _to_revision(project, client, env, past, to)
            elif to is not None:
                raise ConfigError(
                    f"{env} has no history on {live.server} to roll back to revision {to}",
                    hint="Revisions are recorded by `metasync apply` and `metasync rollback`.",
                )
            else:  # applied before histories were kept: the newest local backup
                backup, skipped = newest_backup(backup_folder(project.root, env), env)
                if backup.restores:  # a rollback's: restore what it restored (a no-op)
                    backup = load_backup(
                        find_backup(backup_folder(project.root, env), env, backup.restores)
                    )
                objects, restoring = _from_file(backup, env, live.server)
        images = [
            Resource(kind, name_, version, spec)
            for (kind, name_, version), spec in objects.items()
            if spec is not None
        ]
        used = {secret for r in images for secret in used_secrets(r.spec)}
        secrets = Secrets.from_environment(environment.config.secrets, used, environment.file)
        # fields other systems manage keep the server's value (environment.yaml ignore:)
        plan = build_plan(env, images, live, secrets=secrets, ignore=environment.ignore)
        created = [k for k, spec in objects.items() if spec is None and k in live.objects]
        deletes = prune_changes(created, live, images, Policy())
        deletes = [replace(c, reason=f"created after {restoring.label}") for c in deletes]
        plan = replace(plan, changes=(*plan.changes, *deletes), unmanaged=())
        plan = with_executions(plan, client)
    return Planned(plan, Desired(env, images, skipped), live, secrets,
                   environment.ignore), restoring  # fmt: skip


def _to_revision(project: Project, client: ConductorClient, env: str, past: history.History,
                 to: int | None) -> tuple[dict[Key, Any], Restoring]:  # fmt: skip
    newest = past.revisions[-1]
    if to is None:  # undo the newest apply; after a rollback, stay where it went (a no-op)
        if newest.action == "rollback":
            to = newest.rollback_to if newest.rollback_to is not None else newest.number
        else:
            to = newest.number - 1
    oldest = past.revisions[0].number
    if not oldest - 1 <= to <= newest.number:
        kept = f"revisions {oldest}-{newest.number}" if oldest != newest.number else f"{oldest}"
        raise ConfigError(
            f"{env} has no revision {to} to roll back to (kept: {kept})",
            hint=f"Pass --to a revision from {oldest - 1} to {newest.number}: `metasync history "
            f"--env {env}` lists them.",
        )  # fmt: skip
    objects: dict[Key, Any] = {}
    folder = backup_folder(project.root, env)
    for revision in past.revisions:
        if revision.number <= to:
            continue
        copy = cached(folder, env, revision.number, revision.started)
        befores = copy.objects if copy else history.images(client, past.name, revision.number)
        for key, before in befores.items():
            objects.setdefault(key, before)  # the first later revision's image: the state at ``to``
    label = f"revision {to}" if to else "before revision 1"
    return objects, Restoring(label, rollback_to=to)


def _from_file(backup: Backup, env: str, server: str) -> tuple[dict[Key, Any], Restoring]:
    if backup.environment != env:
        raise ConfigError(
            f"this backup is of {backup.environment}, not {env}",
            location=Location(str(backup.path)),
            hint=f"Run `metasync rollback --env {backup.environment} {backup.path}`.",
        )
    if server != backup.server:
        raise ConfigError(
            f"the backup was taken on {backup.server}, but {env} now points at {server}",
            location=Location(str(backup.path)),
            hint="Roll back on the server the backup came from.",
        )
    label = f"the before-images in {backup.path} ({backup.created})"
    return dict(backup.objects), Restoring(label, restores_file=backup.path.name)
