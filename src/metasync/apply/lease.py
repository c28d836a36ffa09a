"""Holding an environment's apply lock for one run; ``lock.py`` is the protocol on the server.

While the run lives, a heartbeat pushes the lock's expiry ahead every third of its timeout, so it
never expires under a live run, and a short ``lockTimeoutMinutes`` is safe. From the moment it is
taken, the lock's token is recorded in ``.metasync/locks/<env>.json``: a later run of the project
that finds a record whose run is gone (its release failed, or its process on this machine died: kill
-9, a reboot) takes that lock over at once instead of waiting for it to expire. Anyone else (another
machine, another checkout) waits for the expiry, or runs ``metasync unlock``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from metasync.apply.lock import Holder, release, renew, take
from metasync.conductor.client import ConductorClient
from metasync.errors import ConfigError, Problem, ServerError
from metasync.local import LOCAL_DIR, read_local, remove_local, write_local

#: per environment, the lock this project's run holds or left behind (its token, to take it over)
LOCKS_DIR = f"{LOCAL_DIR}/locks"

Connect = Callable[[], AbstractContextManager[ConductorClient]]


@dataclass
class Lease:
    """The lock held for a block; what it replaced, and what went wrong releasing it."""

    holder: Holder
    took_over: Problem | None = None
    release_failed: Problem | None = None

    @property
    def problems(self) -> list[Problem]:
        return [p for p in (self.took_over, self.release_failed) if p is not None]


@contextmanager
def held(connect: Connect, root: Path, *, env: str, name: str, command: str,
         minutes: float) -> Iterator[Lease]:  # fmt: skip
    """Hold ``env``'s lock ``name`` for the block (raises Locked naming the holder). A release
    that fails never hides what the block did: the lease carries it as a warning."""
    record = f"{LOCKS_DIR}/{env}.json"
    before = read_local(root, record)
    ours = _left_behind(before, name)
    token = uuid.uuid4().hex
    with connect() as client:
        try:
            # recorded before it is taken: a run killed a moment after taking it is found out too
            write_local(root, record, _record(name, token, release_failed=False))
            mine, replaced = take(client, name, env=env, command=command, minutes=minutes,
                                  ours=ours, token=token)  # fmt: skip
        except BaseException:
            _restore(root, record, before)
            raise
        lease = Lease(mine, _replaced(env, replaced, replaced.token == ours) if replaced else None)
        stop = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(connect, name, lease, minutes, stop),
                                name=f"metasync-lock-{env}", daemon=True)  # fmt: skip
        beat.start()
        try:
            yield lease
        finally:
            stop.set()
            beat.join()
            try:
                release(client, name, lease.holder)
            except ServerError as exc:
                write_local(root, record, _record(name, mine.token, release_failed=True))
                lease.release_failed = _unreleased(env, name, lease.holder, exc)
            else:
                remove_local(root, record)


def _heartbeat(connect: Connect, name: str, lease: Lease, minutes: float,
               stop: threading.Event) -> None:  # fmt: skip
    """Renew the lock every third of its timeout until ``stop``; its own connection (the run's
    may be busy). A run that dies stops renewing it, and the lock expires."""
    period = max(0.5, minutes * 60 / 3)
    while not stop.wait(period):
        try:
            with connect() as client:
                renewed = renew(client, name, lease.holder, minutes)
        except (ServerError, ConfigError):
            continue  # the next beat tries again; the lock still holds until it expires
        if renewed is None:
            return  # no longer ours: nothing to renew
        lease.holder = renewed


def _record(name: str, token: str, *, release_failed: bool) -> str:
    return json.dumps({
        "name": name, "token": token, "host": socket.gethostname(), "pid": os.getpid(),
        "releaseFailed": release_failed,
    })  # fmt: skip


def _restore(root: Path, record: str, before: dict[str, object]) -> None:
    """Put back the record a run that could not take the lock found (another run's, perhaps)."""
    if before:
        write_local(root, record, json.dumps(before))
    else:
        remove_local(root, record)


def _left_behind(saved: dict[str, object], name: str) -> str | None:
    """The token of a lock of ours that no run holds any more: its release failed, or the
    process that took it on this machine is gone."""
    token = saved.get("token")
    if saved.get("name") != name or not isinstance(token, str) or not token:
        return None
    if saved.get("releaseFailed") is True:
        return token
    pid = saved.get("pid")
    if saved.get("host") != socket.gethostname() or not isinstance(pid, int):
        return None
    return token if not _running(pid) else None


def _running(pid: int) -> bool:
    if os.name != "posix":  # no harmless probe: assume it runs, and wait for the expiry
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _replaced(env: str, old: Holder, ours: bool) -> Problem:
    why = "ended without releasing it" if ours else "did not renew it, and it expired"
    return Problem(
        f"took over the {env} lock left by {old.describe()}: that run {why}",
        severity="warning",
        rule="lock-taken-over",
    )


def _unreleased(env: str, name: str, mine: Holder, exc: ServerError) -> Problem:
    return Problem(
        f"the {env} lock ({name} v{mine.version}) could not be released: {exc.problem.message}",
        hint=f"The next apply from this project takes it over; anyone else waits until it expires "
        f"({mine.expires:%Y-%m-%d %H:%M:%S} UTC), or run `metasync unlock --env {env}` once the "
        "server answers.",
        severity="warning",
        rule="lock-not-released",
    )
