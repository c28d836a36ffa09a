"""One apply per environment at a time (README: Safe apply).

The lock lives on the server itself, so every machine that applies sees it: a workflow definition
``metasync_lock_<project>`` whose description holds the holder, its start and its expiry. Taking
the lock registers the next version of that definition with POST, which the server refuses (409)
when that name and version exist: of two runs racing for the same version, exactly one wins. The
newest version is the lock; it holds until its expiry, so a run that died cannot block for ever
(`metasync unlock` clears it sooner). Releasing deletes the holder's version.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from metasync.conductor.client import ConductorClient
from metasync.conductor.live import LOCK_PREFIX, internal_name
from metasync.errors import MetasyncError, ServerError

_EMAIL = "metasync@example.com"  # 3.15 insists on an ownerEmail
_SETTLE_S = 0.2  # how long a racing POST may take to overwrite the lock just taken


@dataclass(frozen=True, slots=True)
class Holder:
    owner: str
    command: str
    started: datetime
    expires: datetime
    token: str
    version: int

    @property
    def lock_id(self) -> str:
        """What `metasync unlock --env ENV LOCK_ID` names it by: its token (``v<version>`` for a
        lock metasync cannot read)."""
        return self.token or f"v{self.version}"

    def describe(self) -> str:
        if not self.token:
            return f"an unknown holder (a lock metasync cannot read, version {self.version})"
        return (
            f"{self.owner} ({self.command}), since {self.started:%Y-%m-%d %H:%M:%S} UTC, "
            f"expires {self.expires:%Y-%m-%d %H:%M:%S} UTC"
        )


class Locked(MetasyncError):
    """Another run holds the environment's lock."""


def lock_name(project: str) -> str:
    return internal_name(LOCK_PREFIX, project)


def whoami() -> str:
    """``user@host pid N``, plus the CI run when there is one."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    who = f"{user}@{socket.gethostname()} pid {os.getpid()}"
    run = os.environ.get("GITHUB_RUN_ID")
    if run:
        repo = os.environ.get("GITHUB_REPOSITORY", "")
        who += f", GitHub Actions run {repo}#{run}".replace(" #", " ")
    return who


def holder(client: ConductorClient, name: str) -> Holder | None:
    """The current lock (the newest version), expired or not; None when there is none."""
    spec = client.workflow(name)
    return _holder(spec) if spec is not None else None


def take(client: ConductorClient, name: str, *, env: str, command: str, minutes: float,
         owner: str | None = None, now: datetime | None = None,
         ours: str | None = None, token: str | None = None,
         ) -> tuple[Holder, Holder | None]:  # fmt: skip
    """Take the lock (with ``token``, or a new one): the lock taken, and the one it replaced
    (expired, or ``ours``: the token of a lock this project took and no run holds any more, taken
    over like an expired one)."""
    started = now or datetime.now(UTC)
    current = holder(client, name)
    if current is not None and current.expires > started and current.token != (ours or None):
        raise _locked(env, current)
    version = current.version + 1 if current is not None else 1
    mine = Holder(
        owner or whoami(), command, started, started + timedelta(minutes=minutes),
        token or uuid.uuid4().hex, version,
    )  # fmt: skip
    try:
        client.create_workflow(_spec(name, mine))
    except ServerError as exc:
        if exc.status != 409:
            raise
        winner = holder(client, name)  # someone took this very version first
        if winner is not None:
            raise _locked(env, winner) from None
        raise
    # 3.15 checks "exists?" and then writes, not atomically: two POSTs racing for one version can
    # both succeed, the later one overwriting the other. So look again, twice, a moment apart:
    # whoever's token the store holds has the lock.
    for pause in (0.0, _SETTLE_S):
        time.sleep(pause)
        newest = holder(client, name)
        if newest is None or newest.token != mine.token:
            written = client.workflow(name, mine.version)
            if written is not None and _holder(written).token == mine.token:
                _delete(client, name, mine.version)  # ours, but a later version won
            if newest is not None:
                raise _locked(env, newest)
            raise Locked(f"the {env} lock vanished while it was taken", hint="Run it again.")
    if current is not None:
        _delete(client, name, current.version)  # the expired one it replaces
    return mine, current


def renew(client: ConductorClient, name: str, mine: Holder, minutes: float) -> Holder | None:
    """Push ``mine``'s expiry ``minutes`` from now (the heartbeat of a live run); None when the
    lock is no longer ours (it expired and someone took it over)."""
    current = client.workflow(name, mine.version)
    if current is None or _holder(current).token != mine.token:
        return None
    renewed = Holder(mine.owner, mine.command, mine.started,
                     datetime.now(UTC) + timedelta(minutes=minutes), mine.token, mine.version)  # fmt: skip
    client.update_workflows([_spec(name, renewed)])
    return renewed


def release(client: ConductorClient, name: str, mine: Holder) -> None:
    current = client.workflow(name, mine.version)
    if current is not None and _holder(current).token == mine.token:
        _delete(client, name, mine.version)


def unlock(client: ConductorClient, name: str, lock_id: str | None = None) -> list[Holder]:
    """Remove every version of the lock, when its newest is ``lock_id`` (any, when None); what was
    removed, newest first."""
    removed: list[Holder] = []
    for _ in range(1000):  # bounded: each round deletes one version
        spec = client.workflow(name)
        if spec is None:
            break
        current = _holder(spec)
        if lock_id is not None and not removed and current.lock_id != lock_id:
            raise Locked(
                f"the lock changed hands: it is now {current.lock_id}, held by {current.describe()}",
                hint="Nothing was removed. Check that run, and unlock it by its id if it died.",
            )
        client.delete_workflow(name, current.version)
        removed.append(current)
    return removed


def _locked(env: str, current: Holder) -> Locked:
    return Locked(
        f"{env} is locked by {current.describe()}",
        hint="Wait for that run to finish. If it died, run `metasync unlock --env "
        f"{env} {current.lock_id}` (or wait until the lock expires).",
    )


def _spec(name: str, mine: Holder) -> dict[str, Any]:
    content = {
        "owner": mine.owner,
        "command": mine.command,
        "started": mine.started.isoformat(),
        "expires": mine.expires.isoformat(),
        "token": mine.token,
    }
    return {
        "name": name,
        "version": mine.version,
        "description": json.dumps(content),
        "tasks": [{"name": "metasync_lock", "taskReferenceName": "lock", "type": "WAIT"}],
        "schemaVersion": 2,
        "ownerEmail": _EMAIL,
    }


def _holder(spec: dict[str, Any]) -> Holder:
    version = int(spec.get("version", 1))
    try:
        content = json.loads(str(spec.get("description") or ""))
        return Holder(
            str(content["owner"]), str(content.get("command", "apply")),
            datetime.fromisoformat(content["started"]), datetime.fromisoformat(content["expires"]),
            str(content["token"]), version,
        )  # fmt: skip
    except (ValueError, KeyError, TypeError):
        # not written by this code: treat it as held by someone unknown, never as free
        far = datetime.max.replace(tzinfo=UTC)
        return Holder("unknown", "?", datetime.min.replace(tzinfo=UTC), far, "", version)


def _delete(client: ConductorClient, name: str, version: int) -> None:
    try:
        client.delete_workflow(name, version)
    except ServerError as exc:
        if exc.status != 404:
            raise
