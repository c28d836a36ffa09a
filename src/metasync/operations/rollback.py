"""`metasync rollback`: an apply's before-images restored, planned first."""

from __future__ import annotations

from dataclasses import replace

from metasync.apply.backup import Backup
from metasync.apply.backup import find as find_backup
from metasync.apply.backup import folder as backup_folder
from metasync.apply.backup import load as load_backup
from metasync.apply.backup import newest as newest_backup
from metasync.conductor.live import read_live
from metasync.errors import ConfigError, Location, Problem
from metasync.manifests.environment import Policy, load_environment
from metasync.manifests.secrets import Secrets, used_secrets
from metasync.model.resource import Resource
from metasync.operations.plan import Planned, with_executions
from metasync.plan.planner import build_plan
from metasync.plan.prune import prune_changes
from metasync.project import Desired, Project


def rollback_plan(project: Project, env: str, name: str | None = None) -> tuple[Planned, Backup]:
    """Restoring a backup's before-images, as a plan: updates back, creates deleted."""
    environment = load_environment(project.root, env)
    skipped: list[Problem] = []
    if name is None:
        backup, skipped = newest_backup(backup_folder(project.root, env), env)
        if backup.restores:  # the newest is a rollback's: restore what it restored (a no-op)
            backup = load_backup(
                find_backup(backup_folder(project.root, env), env, backup.restores)
            )
    else:
        backup = load_backup(find_backup(backup_folder(project.root, env), env, name))
    if backup.environment != env:
        raise ConfigError(
            f"this backup is of {backup.environment}, not {env}",
            location=Location(str(backup.path)),
            hint=f"Run `metasync rollback --env {backup.environment} {backup.path}`.",
        )
    images = [
        Resource(kind, name_, version, spec)
        for (kind, name_, version), spec in backup.objects.items()
        if spec is not None
    ]
    used = {secret for r in images for secret in used_secrets(r.spec)}
    secrets = Secrets.from_environment(environment.config.secrets, used, environment.file)
    with project.connect(env) as client:
        live = read_live(client)
        if live.server != backup.server:
            raise ConfigError(
                f"the backup was taken on {backup.server}, but {env} now points at {live.server}",
                location=Location(str(backup.path)),
                hint="Roll back on the server the backup came from.",
            )
        plan = build_plan(env, images, live, secrets=secrets)
        created = [k for k, spec in backup.objects.items() if spec is None and k in live.objects]
        deletes = prune_changes(created, live, images, Policy())
        deletes = [replace(c, reason=f"created by the apply of {backup.created}") for c in deletes]
        plan = replace(plan, changes=(*plan.changes, *deletes), unmanaged=())
        plan = with_executions(plan, client)
    return Planned(plan, Desired(env, images, skipped), live, secrets), backup
