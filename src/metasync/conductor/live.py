"""What a server holds, read with one request per kind (workflows: their newest versions, and the
older ones only where the caller needs them)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from metasync.conductor.client import Digest, LiveReader
from metasync.conductor.normalize import Flavour, flavour_of
from metasync.conductor.stream import Digested
from metasync.conductor.transport import Json
from metasync.errors import ServerError
from metasync.model.kinds import IN_ORDER, KINDS, Kind

Key = tuple[str, str, int | None]
#: workflow definitions metasync keeps for itself, never planned, listed or pruned: apply locks,
LOCK_PREFIX = "metasync_lock_"
#: and the ledger of the event handlers a project wrote (they have no field for the mark). Their
#: names hold only what every flavour and setting accepts (conductor-oss's optional name
#: validation refuses a '.'): letters, digits, '_' and '-'.
LEDGER_PREFIX = "metasync_ledger_"
#: and each environment's history of applies and rollbacks (apply/history.py)
HISTORY_PREFIX = "metasync_history_"
#: the names of metasync before 0.2 (a '.' after the prefix): still metasync's own
_LEGACY_PREFIXES = ("metasync_lock.", "metasync_ledger.")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_INTERNAL = (LOCK_PREFIX, LEDGER_PREFIX, HISTORY_PREFIX, *_LEGACY_PREFIXES)
#: (name, version) of an older workflow version -> does the caller need it? Or exactly which
#: (name, version) the caller needs (then the server's index of names and versions is not read)
Older = Callable[[str, int], bool] | AbstractSet[tuple[str, int]]
#: more older versions wanted than this: one read of the whole list costs less than one each
ONE_BY_ONE_MAX = 40


def internal_name(prefix: str, project: str) -> str:
    """``prefix`` + the project's name, with what a strict server refuses in a name made '_'."""
    return prefix + _UNSAFE.sub("_", project)


@dataclass(frozen=True)
class LiveState:
    server: str
    version: str | None
    flavour: Flavour
    objects: Mapping[Key, Mapping[str, Any]]
    #: metasync's own definitions (locks, ledgers) by name, newest version
    internal: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the kinds this server does not have (conductor 3.15: no schedules)
    missing: tuple[str, ...] = ()
    #: older workflow versions were left unread (the reader's caller needed none of them):
    #: ``objects`` holds each workflow's newest version and the older ones asked for
    partial: bool = False
    #: of the objects read in a list: the reader's digest of each one's JSON text (read_live's
    #: ``digest``), where it gave one
    digests: Mapping[Key, Any] = field(default_factory=dict)
    _ledgers: dict[str, dict[str, dict[str, str | None]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def ledger(self, mark: str) -> dict[str, dict[str, str | None]]:
        """What the project of ``mark`` wrote of the kinds with no field for an owner (event
        handlers, schedules), as its ledger records them: ledger key -> name -> fingerprint."""
        if mark not in self._ledgers:  # asked once per object: read the ledger once
            ledger = self.internal.get(ledger_name(mark)) or self.internal.get(
                "metasync_ledger." + mark.removeprefix("metasync/")
            )
            self._ledgers[mark] = read_ledger(ledger) if ledger is not None else {}
        return self._ledgers[mark]

    def owned(self, key: Key, mark: str | None) -> bool:
        """Did the project of ``mark`` write this object (and nobody overwrote its mark)?"""
        if mark is None or key not in self.objects:
            return False
        kind = KINDS[key[0]]
        if kind.owned_by == "ledger":
            return key[1] in self.ledger(mark).get(kind.ledger_key, {})
        owner = str(self.objects[key].get("ownerApp") or "")
        return owner == mark or owner.startswith(f"{mark}@")

    def written(self, key: Key, mark: str | None) -> str | None:
        """The fingerprint of what the project of ``mark`` last wrote to this object, if known."""
        if not self.owned(key, mark) or mark is None:
            return None
        kind = KINDS[key[0]]
        if kind.owned_by == "ledger":
            return self.ledger(mark)[kind.ledger_key].get(key[1])
        owner = str(self.objects[key].get("ownerApp") or "")
        return owner.partition("@")[2] or None


def stamp(mark: str, fingerprint: str | None) -> str:
    """``metasync/<project>@sha256:...``: whose it is, and what was written."""
    return f"{mark}@{fingerprint}" if fingerprint else mark


def ledger_name(mark: str) -> str:
    return internal_name(LEDGER_PREFIX, mark.removeprefix("metasync/"))


def read_ledger(spec: Mapping[str, Any]) -> dict[str, dict[str, str | None]]:
    """Ledger key (``eventHandlers``, ...) -> name -> fingerprint written (None: not recorded)."""
    try:
        content = json.loads(str(spec.get("description") or "{}"))
    except ValueError:
        return {}
    found: dict[str, dict[str, str | None]] = {}
    for key, entries in content.items() if isinstance(content, dict) else ():
        if isinstance(entries, list):  # the first ledgers listed names only
            found[str(key)] = {str(name): None for name in entries}
        elif isinstance(entries, dict):
            found[str(key)] = {str(n): (str(fp) if fp else None) for n, fp in entries.items()}
    return found


def ledger_spec(mark: str, entries: Mapping[str, Mapping[str, str | None]]) -> dict[str, Any]:
    """The ledger as a workflow definition (3.15 wants tasks and an ownerEmail)."""
    content = {key: dict(sorted(names.items())) for key, names in sorted(entries.items())}
    return {
        "name": ledger_name(mark),
        "version": 1,
        "description": json.dumps(content),
        "tasks": [{"name": "metasync_ledger", "taskReferenceName": "ledger", "type": "WAIT"}],
        "schemaVersion": 2,
        "ownerEmail": "metasync@example.com",
        "ownerApp": mark,
    }


def read_live(reader: LiveReader, older: Older | None = None, digest: Digest | None = None,
              said: Callable[[str | None], object] | None = None) -> LiveState:  # fmt: skip
    """Every object of every kind the server has (one request per kind); metasync's own
    definitions (locks, ledgers) apart. A kind the server does not have is in ``missing``.

    ``older`` says which older workflow versions (not a name's newest) the caller needs; None:
    all of them. With it, workflows are read as their newest versions plus those (each read by
    itself, or with the whole list when there are many); a server without the endpoints for
    that is read whole. ``digest``: what to keep of each listed object's JSON text
    (``LiveState.digests``). ``said``: called with the server's version as soon as it is known
    (before the lists have come)."""

    def read(kind: Kind) -> tuple[list[Json] | None, bool, str]:
        if kind.versioned and older is not None:
            found = _history_proof(reader, older, digest)
            if found is not None:
                return (*found, "GET /api/metadata/workflow/latest-versions")
        return reader.objects(kind, digest), False, f"GET /api{kind.endpoints.list}"

    # independent requests: the server answers them side by side (its answer is most of the
    # time), and a failure is reported as the first one in the kinds' order
    with ThreadPoolExecutor(max_workers=len(IN_ORDER) + 1) as pool:
        asked_version = pool.submit(reader.server_version)
        reads = [pool.submit(read, kind) for kind in IN_ORDER]
        version = asked_version.result()
        if said is not None:
            said(version)
        answers = [(kind, future.result()) for kind, future in zip(IN_ORDER, reads, strict=True)]
    objects: dict[Key, Mapping[str, Any]] = {}
    internal: dict[str, Mapping[str, Any]] = {}
    digests: dict[Key, Any] = {}
    missing: list[str] = []
    partial = False
    for kind, (listed, left_out, request) in answers:
        if listed is None:
            missing.append(kind.name)
            continue
        partial = partial or left_out
        kept = getattr(listed, "digests", None) if digest is not None else None
        for i, spec in enumerate(_objects(listed, request, reader.url, kind.versioned)):
            name = spec["name"]
            if name.startswith(_INTERNAL):
                if spec.get("version", 1) >= internal.get(name, {}).get("version", 0):
                    internal[name] = spec
                continue
            key = (kind.name, name, spec.get("version", 1) if kind.versioned else None)
            objects[key] = spec
            if kept is not None and i < len(kept) and kept[i] is not None:
                digests[key] = kept[i]
    return LiveState(reader.url, version, flavour_of(version), objects, internal, tuple(missing),
                     partial, digests)  # fmt: skip


def _history_proof(reader: LiveReader, older: Older,
                   digest: Digest | None = None) -> tuple[list[Json], bool] | None:  # fmt: skip
    """The newest version of each workflow and the older ones ``older`` names, and whether any
    older one was (or may have been: the index not read) left out; None when the server cannot
    answer that (read the whole list)."""
    if isinstance(older, AbstractSet):  # exactly these: no need of the index
        newest = reader.newest_workflows(digest)
        if newest is None:
            return None
        checked = _objects(newest, "GET /api/metadata/workflow/latest-versions", reader.url, True)
        top = {str(spec["name"]): spec.get("version", 1) for spec in checked}
        # a name the newest list does not have has no version left
        exact = sorted((n, v) for n, v in older if n in top and top[n] != v)
        return _older(reader, checked, exact), True
    with ThreadPoolExecutor(max_workers=1) as pool:  # the two reads overlap
        asked_index = pool.submit(reader.workflow_versions)
        newest = reader.newest_workflows(digest)
        index = asked_index.result()
    if newest is None or index is None:
        return None
    checked = _objects(newest, "GET /api/metadata/workflow/latest-versions", reader.url, True)
    top = {str(spec["name"]): spec.get("version", 1) for spec in checked}
    wanted: list[tuple[str, int]] = []
    skipped = False
    for name, versions in index.items():
        for number in versions:
            if name not in top or number == top[name]:
                continue  # the newest is read; a name not in the newest list appeared meanwhile
            if not name.startswith(_INTERNAL) and older(name, number):
                wanted.append((name, number))
            else:
                skipped = True
    return _older(reader, checked, wanted), skipped


def _older(reader: LiveReader, checked: list[Json], wanted: list[tuple[str, int]]) -> list[Json]:
    """``checked`` (the newest versions) and the older versions ``wanted``: each read by itself,
    or with the whole list when there are many."""
    if not wanted:
        return checked  # as listed (with its digests)
    if len(wanted) > ONE_BY_ONE_MAX:  # the whole list, of which only those are kept
        keep = set(wanted)
        listed = reader.objects(KINDS["WorkflowDef"]) or []
        request = f"GET /api{KINDS['WorkflowDef'].endpoints.list}"
        found = [
            spec
            for spec in _objects(listed, request, reader.url, True)
            if (spec["name"], spec.get("version", 1)) in keep
        ]
        return _joined(checked, found)
    with ThreadPoolExecutor(max_workers=8) as pool:  # independent reads: let them overlap
        one_each = list(pool.map(lambda key: reader.workflow(*key), wanted))
    # a version deleted between the reads is not there (None)
    return _joined(checked, [spec for spec in one_each if spec is not None])


def _joined(listed: list[Json], more: list[Json]) -> list[Json]:
    """``listed`` and then ``more``, the digests of ``listed`` kept (``more``'s: none)."""
    digests = getattr(listed, "digests", None)
    if digests is None:
        return [*listed, *more]
    joined = Digested([*listed, *more])
    joined.digests = [*digests, *([None] * len(more))]
    return joined


def _objects(items: list[Any], request: str, server: str,
             versioned: bool = False) -> list[Json]:  # fmt: skip
    """The server's list, each item checked for what identifies it (a damaged or foreign answer
    is the server's fault, said as such, never a crash)."""
    for i, item in enumerate(items):
        problem = None
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            problem = "has no name"
        elif (
            versioned
            and "version" in item
            and (not isinstance(item["version"], int) or isinstance(item["version"], bool))
        ):
            problem = f"has version {item['version']!r}, not an integer"
        if problem is not None:
            raise ServerError(
                f"{request}: item {i} of the answer {problem}",
                hint=f"Is {server} a Conductor server? Its answer is not what Conductor sends.",
            )
    return items
