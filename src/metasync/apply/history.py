"""An environment's history: every apply and rollback is a numbered revision, kept on its server.

Why the server: every run that changes an environment must reach its server (and takes the lock
there), whichever machine or CI job it runs on; a git ref or an artifact store would need write
access that an apply job does not otherwise need, and a run that could not push would leave a hole
in the history. So revision N is version N of the workflow definition
``metasync_history_<project>_<environment>``, never planned, listed or pruned (like the lock).
Its description holds the record: who, when, the commit and plan fingerprint, the result, and the
summaries of every revision kept, so that listing the history is one request; its ``variables``
hold the before-images of every object the run touched (secret values masked, as in the local
backups), as JSON the server keeps as is (not inside one string: Jackson refuses a string of more
than 5,000,000 characters). The newest ``KEEP`` revisions are kept, fewer when their images pass
``BUDGET`` bytes (every version is in the server's bulk list of workflows, which a plan reads);
the local backup files are a copy, read first when they match.

Revision numbers are taken under the environment's apply lock; should two runs race all the same,
the server refuses the second POST of one version (409) and the loser takes the next number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from metasync.conductor.client import ConductorClient
from metasync.conductor.live import HISTORY_PREFIX, internal_name
from metasync.errors import ConfigError, Location, ServerError

Key = tuple[str, str, int | None]
#: interrupted: Ctrl-C stopped it (``landed`` says how many of its changes landed before)
Result = Literal["started", "landed", "not landed", "interrupted"]
#: revisions kept on the server (older ones are deleted as new ones are recorded)...
KEEP = 50
#: ...while their before-images together stay under this many bytes (the newest is always kept)
BUDGET = 32 * 1024 * 1024
_EMAIL = "metasync@example.com"  # 3.15 insists on an ownerEmail


def history_name(project: str, env: str) -> str:
    return internal_name(HISTORY_PREFIX, f"{project}_{env}")


@dataclass(frozen=True)
class Revision:
    """One apply or rollback of an environment, as its history records it."""

    number: int
    action: Literal["apply", "rollback"]
    started: str
    who: str
    commit: str | None
    plan: str  # the fingerprint of the changes it set out to make
    changes: int
    #: the size of its before-images, serialized
    size: int = 0
    result: Result = "started"
    finished: str | None = None
    #: a rollback's target: the revision whose state it restores (0: before the first one)
    rollback_to: int | None = None
    #: a rollback of a backup file (not of a revision): the file's name
    restores_file: str | None = None
    #: an interrupted run: how many of its changes landed before it stopped
    landed: int | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "revision": self.number,
            "action": self.action,
            "rollbackTo": self.rollback_to,
            "restoresFile": self.restores_file,
            "started": self.started,
            "finished": self.finished,
            "who": self.who,
            "commit": self.commit,
            "planFingerprint": self.plan,
            "changes": self.changes,
            "bytes": self.size,
            "result": self.result,
            **({"landed": self.landed} if self.landed is not None else {}),
        }

    @classmethod
    def from_summary(cls, entry: Mapping[str, Any]) -> Revision:
        return cls(
            int(entry["revision"]), entry["action"], str(entry["started"]), str(entry["who"]),
            entry.get("commit"), str(entry.get("planFingerprint") or ""),
            int(entry.get("changes") or 0), int(entry.get("bytes") or 0),
            entry.get("result") or "started", entry.get("finished"), entry.get("rollbackTo"),
            entry.get("restoresFile"), entry.get("landed"),
        )  # fmt: skip

    def describe(self) -> str:
        if self.action == "rollback":
            what = (
                f"rollback to revision {self.rollback_to}"
                if self.rollback_to is not None
                else f"rollback of {self.restores_file}"
            )
        else:
            what = "apply"
        return f"revision {self.number} ({what}, {self.started[:19].replace('T', ' ')} UTC)"


@dataclass(frozen=True)
class History:
    name: str
    revisions: tuple[Revision, ...]  # oldest first

    @property
    def newest(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None


def now() -> str:
    return datetime.now(UTC).isoformat()


def read(client: ConductorClient, name: str) -> History:
    """The revisions kept (from the newest one's index); empty when there is no history."""
    spec = client.workflow(name)
    if spec is None:
        return History(name, ())
    record = _record(spec, name)
    return History(name, tuple(Revision.from_summary(e) for e in record.get("index", [])))


def images(client: ConductorClient, name: str, number: int) -> dict[Key, Any]:
    """Revision ``number``'s before-images by key (None: the object did not exist)."""
    spec = client.workflow(name, number)
    if spec is None:
        raise ConfigError(
            f"revision {number} is no longer kept on the server ({name})",
            hint=f"The newest {KEEP} revisions are kept: roll back to a newer one.",
        )
    _record(spec, name)
    objects = (spec.get("variables") or {}).get("objects")
    if not isinstance(objects, list):
        raise ConfigError(
            f"revision {number} on the server has no before-images ({name})",
            hint="Roll back to a newer revision.",
        )
    return {(o["kind"], o["name"], o["version"]): o["before"] for o in objects}


def begin(client: ConductorClient, name: str, revision: Revision,
          objects: Sequence[Mapping[str, Any]]) -> Revision:  # fmt: skip
    """Record ``revision`` (its number taken here) with its before-images, before any write.
    Raises ServerError when the server will not keep it: then nothing may be applied."""
    current = read(client, name)
    number = (current.newest.number if current.newest else 0) + 1
    size = len(json.dumps(list(objects), separators=(",", ":"), ensure_ascii=False))
    for _ in range(5):
        mine = replace(revision, number=number, size=size)
        kept = _kept(mine, current.revisions)
        try:
            client.create_workflow(_spec(name, mine, [r.summary() for r in kept], objects))
        except ServerError as exc:
            if exc.status != 409:
                raise
            current = read(client, name)  # another run took this number: the next one
            number = max(number, current.newest.number if current.newest else 0) + 1
            continue
        numbers = {r.number for r in kept}
        for dropped in current.revisions:
            if dropped.number not in numbers:
                _forget(client, name, dropped.number)
        return mine
    raise ConfigError(f"could not take a revision number in {name}: other runs keep taking them")


def _kept(mine: Revision, before: Sequence[Revision]) -> list[Revision]:
    """The revisions kept once ``mine`` is recorded, oldest first: the newest ``KEEP``, fewer
    when their images pass ``BUDGET`` bytes together."""
    kept, total = [mine], mine.size
    for revision in sorted(before, key=lambda r: r.number, reverse=True):
        if len(kept) >= KEEP or total + revision.size > BUDGET:
            break
        kept.append(revision)
        total += revision.size
    return sorted(kept, key=lambda r: r.number)


def finish(client: ConductorClient, name: str, revision: Revision, result: Result,
           landed: int | None = None) -> Revision:  # fmt: skip
    """Record how ``revision`` ended (its images and the index kept, its entry updated)."""
    spec = client.workflow(name, revision.number)
    if spec is None:
        raise ConfigError(f"revision {revision.number} vanished from {name}")
    record = _record(spec, name)
    done = replace(revision, result=result, finished=now(), landed=landed)
    index = [done.summary() if e.get("revision") == done.number else e for e in record["index"]]
    objects = (spec.get("variables") or {}).get("objects") or []
    client.update_workflows([_spec(name, done, index, objects)])
    return done


def _forget(client: ConductorClient, name: str, number: int) -> None:
    if number < 1:
        return
    try:
        client.delete_workflow(name, number)
    except ServerError as exc:
        if exc.status != 404:
            raise


def _spec(name: str, revision: Revision, index: Sequence[Mapping[str, Any]],
          objects: Sequence[Mapping[str, Any]]) -> dict[str, Any]:  # fmt: skip
    content = {"formatVersion": 1, **revision.summary(), "index": list(index)}
    return {
        "name": name,
        "version": revision.number,
        "description": json.dumps(content, separators=(",", ":"), ensure_ascii=False),
        "variables": {"objects": list(objects)},
        "tasks": [{"name": "metasync_history", "taskReferenceName": "history", "type": "WAIT"}],
        "schemaVersion": 2,
        "ownerEmail": _EMAIL,
    }


def _record(spec: Mapping[str, Any], name: str) -> dict[str, Any]:
    try:
        record = json.loads(str(spec.get("description") or ""))
        if not isinstance(record, dict) or record.get("formatVersion") != 1:
            raise ValueError("not a metasync history record (formatVersion 1)")
        return record
    except ValueError as exc:
        raise ConfigError(
            f"the history on the server is damaged: {exc}",
            location=Location(f"{name} version {spec.get('version')}"),
            hint="Delete that workflow definition version on the server; the revisions before it "
            "are kept.",
        ) from None
