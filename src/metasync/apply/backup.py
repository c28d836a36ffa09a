"""Before-images (README: Safe apply): what every object an apply touches looked like before it.

The local copy of each revision of an environment's history (apply/history.py keeps them on the
server): one JSON file per apply or rollback, ``<dir>/<env>/<UTC time>-<id>.json``, written before
the first write, once the server has recorded the revision. An
object the apply creates is recorded as absent (``before: null``), so a rollback deletes it. Known
secret values, and whatever the server holds where a manifest has a secret (a value since rotated),
are stored as the ``((secrets.NAME))`` placeholder: a rollback writes the current secret there.
The file is readable by its owner only, and written whole or not at all (a temporary file,
synced, then renamed).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from metasync.errors import ConfigError, Location, Problem
from metasync.manifests.environment import ENVIRONMENTS_DIR, load_environment
from metasync.manifests.loader import MANIFESTS_DIR
from metasync.manifests.secrets import hide_where_secret
from metasync.plan.model import Change

BACKUP_KIND = "metasync-backup"
Key = tuple[str, str, int | None]


@dataclass(frozen=True)
class Backup:
    path: Path
    environment: str
    server: str
    created: str
    #: before-images by key; None: the object did not exist
    objects: Mapping[Key, Mapping[str, Any] | None]
    #: written by a rollback: the name of the backup it restored
    restores: str | None = None
    #: the revision of the environment's history this is a copy of (apply/history.py)
    revision: int | None = None


def save(directory: Path, environment: str, server: str, objects: Sequence[Mapping[str, Any]],
         *, commit: str | None = None, restores: str | None = None,
         revision: int | None = None, created: str | None = None) -> Path:  # fmt: skip
    """Write the before-images (``images()``: secret values already masked) of one apply, or
    rollback (``restores``: the backup file it restored), revision ``revision``."""
    now = datetime.fromisoformat(created) if created else datetime.now(UTC)
    folder = directory / environment
    path = folder / f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}.json"
    document = {
        "kind": BACKUP_KIND,
        "formatVersion": 1,
        "environment": environment,
        "server": server,
        "created": now.isoformat(),
        "commit": commit,
        "restores": restores,
        "revision": revision,
        "objects": list(objects),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ignore = directory / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# metasync before-images: local records, not for git\n*\n")
        # whole or not at all: a temporary file (never taken for a backup), synced, then renamed
        partial = folder / f".{path.stem}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as stream:
            json.dump(document, stream, indent=1, ensure_ascii=False)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
        _sync_folder(folder)
    except OSError as exc:
        raise ConfigError(
            f"cannot save the before-images: {exc.strerror}: nothing was applied",
            location=Location(str(path)),
            hint="Make the backups folder writable, or set backups.dir in environment.yaml.",
        ) from None
    return path


def images(changes: Sequence[Change], *, mask: Callable[[Any], Any],
           templates: Mapping[Key, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The before-image of each change's object (None: absent), secrets masked."""
    templates = templates or {}
    return [
        {
            "kind": c.kind,
            "name": c.name,
            "version": c.version,
            "before": mask(hide_where_secret(dict(c.live), templates.get(c.key, {})))
            if c.live is not None
            else None,
        }
        for c in changes
    ]


def cached(directory: Path, environment: str, revision: int, created: str) -> Backup | None:
    """The local copy of ``revision`` (recorded at ``created``), if this machine has it."""
    folder = directory / environment
    for path in sorted(folder.glob("*.json"), reverse=True) if folder.is_dir() else []:
        try:
            backup = load(path)
        except ConfigError:
            continue
        if backup.revision == revision and backup.created == created:
            return backup
    return None


def _sync_folder(folder: Path) -> None:
    """The rename itself survives a crash (POSIX: sync the folder's entry)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def newest(directory: Path, environment: str) -> tuple[Backup, list[Problem]]:
    """The newest backup that can be read, and a warning for each newer one that cannot (a
    damaged file is never taken for the newest)."""
    folder = directory / environment
    skipped: list[Problem] = []
    files = sorted(folder.glob("*.json"), reverse=True) if folder.is_dir() else []
    for path in files:
        try:
            return load(path), skipped
        except ConfigError as exc:
            skipped.append(Problem(
                f"skipped a damaged backup: {exc.problem.message}", exc.problem.location,
                "Remove it, or pass an older backup by name.", severity="warning",
                rule="damaged-backup",
            ))  # fmt: skip
    raise ConfigError(
        f"there is no revision of {environment} to roll back to: its server keeps no history "
        f"of this project, and there is no {'readable ' if files else ''}local backup",
        location=Location(str(folder)),
        hint="`metasync apply` records each run as a revision, with its before-images. A backup "
        f"file (an older metasync's CI artifact) can be passed: `metasync rollback --env "
        f"{environment} PATH`.",
    )


def find(directory: Path, environment: str, name: str) -> Path:
    """The backup named: a path, or a file name in the environment's folder (``newest`` finds
    the newest readable one)."""
    folder = directory / environment
    for candidate in (Path(name), folder / name, folder / f"{name}.json"):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no backup {name!r} for {environment}", location=Location(str(folder)),
        hint=f"Backups of {environment}: {_listing(folder)}.",
    )  # fmt: skip


def load(path: Path) -> Backup:
    try:
        document = json.loads(path.read_text())
        if document.get("kind") != BACKUP_KIND or document.get("formatVersion") != 1:
            raise ValueError("not a metasync backup (formatVersion 1)")
        objects = {(o["kind"], o["name"], o["version"]): o["before"] for o in document["objects"]}
        restores, revision = document.get("restores"), document.get("revision")
        return Backup(
            path, document["environment"], document["server"], document["created"], objects,
            restores if isinstance(restores, str) else None,
            revision if isinstance(revision, int) else None,
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"cannot read the backup: {exc}", location=Location(str(path)),
            hint="Pass a file written by `metasync apply` (see `metasync rollback --help`).",
        ) from None  # fmt: skip


def _listing(folder: Path) -> str:
    names = sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []
    return ", ".join(names[-5:]) or "none"


def folder(root: Path, env: str) -> Path:
    """Where ``env``'s before-images go: inside the project (never under manifests/ or
    environments/, whose files git must see), or an absolute path outside it."""
    environment = load_environment(root, env, connect=False)
    given = environment.config.backups.dir
    folder = (root / given).resolve()
    where = Location(environment.file, None, "backups.dir")
    inside = folder == root or root in folder.parents
    if not Path(given).is_absolute() and not inside:
        raise ConfigError(
            f"backups.dir {given!r} leads out of the project ({folder})", location=where,
            hint="Keep it inside the project (the default is .metasync/backups), or give an "
            "absolute path to say a folder outside it on purpose.",
        )  # fmt: skip
    for kept in (MANIFESTS_DIR, ENVIRONMENTS_DIR):
        if folder == root / kept or (root / kept) in folder.parents:
            raise ConfigError(
                f"backups.dir {given!r} is inside {kept}/: its .gitignore would hide new "
                f"{kept} files from git", location=where,
                hint="Use a folder of its own, such as .metasync/backups (the default).",
            )  # fmt: skip
    if folder == root:
        raise ConfigError(
            f"backups.dir {given!r} is the project itself: its .gitignore would hide "
            "everything from git", location=where,
            hint="Use a folder of its own, such as .metasync/backups (the default).",
        )  # fmt: skip
    return folder
