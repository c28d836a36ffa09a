"""The environment's apply lock held for a block, and `metasync unlock`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from metasync.apply.lease import Lease, held
from metasync.apply.lock import Holder, holder
from metasync.apply.lock import unlock as clear_lock
from metasync.manifests.environment import load_environment
from metasync.operations.apply import ApplyInterrupted
from metasync.project import Project


@contextmanager
def locked(project: Project, env: str, command: str) -> Iterator[Lease]:
    """Hold ``env``'s apply lock for a block (apply/lease.py: heartbeat, release, take-over). An
    interrupted apply leaving the block carries the lease, to say whether the lock was released."""
    minutes = load_environment(project.root, env).config.policy.lockTimeoutMinutes
    with held(lambda: project.connect(env), project.root, env=env, name=project.lock_name,
              command=command, minutes=minutes) as lease:  # fmt: skip
        try:
            yield lease
        except ApplyInterrupted as stop:
            stop.lease = lease  # released (or not) on the way out of ``held``
            raise


def current(project: Project, env: str) -> Holder | None:
    """``env``'s lock as it is now (expired or not); None when there is none."""
    with project.connect(env) as client:
        return holder(client, project.lock_name)


def unlock(project: Project, env: str, lock_id: str | None = None) -> list[Holder]:
    """Clear ``env``'s lock (its holder died), only if it is still ``lock_id`` when given; what
    was removed."""
    with project.connect(env) as client:
        return clear_lock(client, project.lock_name, lock_id)
