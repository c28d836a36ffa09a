"""A content-addressed cache of what loading the manifests produced, under ``.metasync/cache/``.

An entry is found by a key that hashes everything its value was computed from (the manifests'
bytes or git blob ids, the environment's resolved settings, metasync's version, this file's
format), so an entry is never out of date: a change makes a new key, and the old entry ages out
(least recently used first, beyond ``MAX_BYTES``). Each file carries a magic string, the
format, metasync's version, its key and a SHA-256 of its payload, checked before the payload is
read: a damaged or foreign file is reported once (rule ``cache-corrupt``), ignored, and
rewritten. Writes go to a temporary file renamed into place, so concurrent runs see a whole
file or none. A folder that
cannot be read or written only loses the memory: no command fails for the cache.

The cache is local state (``.metasync/`` ignores itself in git). It holds rendered manifests,
variables included, never a secret's value (secrets stay placeholders until a request is sent).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import metasync
from metasync.bulk import no_cycles
from metasync.errors import Location, Problem
from metasync.local import LOCAL_DIR, write_local
from metasync.manifests.yamlio import _Source

#: where the cache lives, under the project
CACHE_DIR = f"{LOCAL_DIR}/cache"
#: the environment variable that turns the cache off (like ``--no-cache``)
NO_CACHE_ENV = "METASYNC_NO_CACHE"
#: the cache's size bound: beyond it, the least recently used entries are removed
MAX_BYTES = 512 * 1024 * 1024
#: the layout of an entry; bumped whenever what is stored changes shape
FORMAT = 2
_MAGIC = b"metasync-cache\n"
_DIGEST = 32
_KEY = 32  # the key, a SHA-256


def version() -> str:
    """metasync's version, part of every key and header; with a digest of its code's files (names,
    sizes, times), so that code changed without a new version (an editable install) is not served
    results of the old code."""
    return f"{metasync.__version__}+{_code_digest()}"


@functools.cache
def _code_digest() -> str:
    digest = hashlib.sha256()
    package = Path(metasync.__file__).parent
    for folder, _, names in sorted(os.walk(package)):
        for name in sorted(n for n in names if n.endswith(".py")):
            with contextlib.suppress(OSError):
                stat = os.stat(os.path.join(folder, name))
                digest.update(f"{folder}/{name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def disabled_by_env() -> bool:
    return os.environ.get(NO_CACHE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def key_of(*parts: object) -> str:
    """A key: the SHA-256 of ``parts`` (strings, bytes, or reprs of plain data)."""
    digest = hashlib.sha256(f"{FORMAT}\0{version()}".encode())
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def file_key(path: Path | str) -> str | None:
    """The SHA-256 of a file's bytes; None when it cannot be read (then nothing is cached)."""
    try:
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except OSError:
        return None


#: a file hashed this soon after its last change is hashed again next time: a change made
#: within the file system's timestamp granularity (2 s on FAT) may leave its stat as it was
_RACY_NS = 2_000_000_000
_Stat = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


class FileHashes:
    """Files' SHA-256, remembered by their stat (size, modification and change times, inode), as
    git's index remembers blob ids: a file whose stat is as it was is not read again. An entry is
    trusted only when the file had not changed for ``_RACY_NS`` when it was hashed (a change after
    that gives another change time); anything else is hashed. Kept in the cache
    (``hashes/``): with the cache off, every file is read."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        known, damage = cache.load("hashes", key_of("hashes"), sources_from(()))
        self._known: dict[str, tuple[_Stat, int, str]] = known if isinstance(known, dict) else {}
        self._changed = damage is not None  # rewritten
        #: the warning to show when the file was damaged
        self.damage = damage

    def of(self, path: Path | str, info: os.stat_result | None = None,
           name: str | None = None) -> str | None:  # fmt: skip
        """``path``'s SHA-256 (hex); None when it cannot be read. ``info``: its stat, if known;
        ``name``: its path from the project's root (the default: ``path`` as given)."""
        name = name or str(path)
        try:
            info = info or os.stat(name)
        except OSError:
            return None
        stat = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        known = self._known.get(name)
        if known is not None and known[0] == stat and known[1] - _RACY_NS > max(stat[1:3]):
            return known[2]
        hashed_at = time.time_ns()
        digest = file_key(path)
        if digest is None:
            return None
        self._known[name] = (stat, hashed_at, digest)
        self._changed = True
        return digest

    def keep(self) -> None:
        """Store what was hashed this run, for the next one (files gone are forgotten)."""
        if self._changed:
            root = self._cache.root
            self._cache.store("hashes", key_of("hashes"), {
                name: entry for name, entry in self._known.items()
                if os.path.exists(os.path.join(root, name))
            })  # fmt: skip
            self._changed = False


#: classes an entry may hold; anything else in a file makes it foreign
_ALLOWED = ("metasync.",)
_ALLOWED_NAMES = {("functools", "partial"), ("builtins", "getattr"), ("builtins", "frozenset"),
                  ("builtins", "set")}  # fmt: skip


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, sources: Callable[[str, int], _Source | None]) -> None:
        super().__init__(io.BytesIO(data))
        self._sources = sources

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(_ALLOWED) or (module, name) in _ALLOWED_NAMES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a class the cache holds")

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 3 and pid[0] == "source":
            source = self._sources(pid[1], pid[2])
            if source is not None:
                return source
        raise pickle.UnpicklingError(f"no reader for {pid!r}")


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is _Source:
            return ("source", obj.file, obj.size)  # the text stays in the file it came from
        return None


class _Unusable(Exception):
    """An entry that cannot be used; ``damage`` says why when it is damaged (not just missing)."""

    def __init__(self, damage: str | None = None) -> None:
        super().__init__(damage)
        self.damage = damage


class Cache:
    """The cache of one project (``enabled=False``: every lookup misses, nothing is written)."""

    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.root = root
        self.folder = root / CACHE_DIR
        self.enabled = enabled
        #: the damaged files met in this run, each reported once
        self._reported: set[str] = set()

    def _path(self, space: str, key: str) -> Path:
        return self.folder / space / f"{key}.bin"

    def load(self, space: str, key: str, sources: Callable[[str, int], _Source | None]
             ) -> tuple[Any, Problem | None]:  # fmt: skip
        """The value stored under ``key`` (None when there is none) and, when the file there is
        damaged, the warning to show (once per run)."""
        if not self.enabled:
            return None, None
        path = self._path(space, key)
        try:
            data = path.read_bytes()
        except OSError:
            return None, None
        try:
            with no_cycles():
                value = _Unpickler(_payload(data, key), sources).load()
        except _Unusable as exc:
            return None, self._damaged(path, exc.damage) if exc.damage else None
        except Exception as exc:  # a payload that passed its checksum but does not load
            return None, self._damaged(path, f"its content does not load ({type(exc).__name__})")
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return value, None

    def store(self, space: str, key: str, value: Any) -> None:
        """Store ``value`` under ``key``: atomically, and never failing the command."""
        if not self.enabled:
            return
        try:
            buffer = io.BytesIO()
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            return  # something in it cannot be stored: it is computed each time
        payload = buffer.getbuffer()
        header = _header(key)
        path = self._path(space, key)
        try:
            if not self.folder.is_dir():
                write_local(self.root, f"{CACHE_DIR}/README", _README)  # also ignores .metasync/
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".bin")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(header)
                    out.write(hashlib.sha256(payload).digest())
                    out.write(payload)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            return
        self._evict()

    def _damaged(self, path: Path, why: str) -> Problem | None:
        with contextlib.suppress(OSError):
            path.unlink()  # never trusted again; the recomputed value takes its place
        shown = path.relative_to(self.root).as_posix()
        if shown in self._reported:
            return None
        self._reported.add(shown)
        return Problem(
            f"a cache file was damaged ({why}): it was ignored, and what it held was computed "
            "again",
            Location(shown),
            "Nothing to do: the cache repairs itself. If this recurs, check the disk, or run "
            f"with --no-cache ({NO_CACHE_ENV}=1).",
            "warning",
            "cache-corrupt",
        )

    def _evict(self) -> None:
        """Remove the least recently used entries while the cache is above ``MAX_BYTES``."""
        try:
            entries = [
                (stat.st_mtime, stat.st_size, path)
                for path in self.folder.glob("*/*.bin")
                for stat in [path.stat()]
            ]
        except OSError:
            return
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= MAX_BYTES:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size


def _header(key: str) -> bytes:
    tag = version().encode()
    return (_MAGIC + FORMAT.to_bytes(2, "little") + len(tag).to_bytes(2, "little") + tag
            + bytes.fromhex(key))  # fmt: skip


def _payload(data: bytes, key: str) -> bytes:
    """The payload of a cache file, after its checks; raises _Unusable when one fails."""
    if not data.startswith(_MAGIC):
        raise _Unusable("it is not a metasync cache file")
    at = len(_MAGIC)
    if len(data) < at + 4:
        raise _Unusable("it is truncated")
    if int.from_bytes(data[at : at + 2], "little") != FORMAT:
        raise _Unusable("it has another format")
    size = int.from_bytes(data[at + 2 : at + 4], "little")
    tag = data[at + 4 : at + 4 + size]
    if tag != version().encode():
        raise _Unusable(f"it was written by metasync {tag.decode(errors='replace')}")
    start = at + 4 + size
    if data[start : start + _KEY] != bytes.fromhex(key):
        raise _Unusable("it holds another entry than its name says")
    start += _KEY
    digest, payload = data[start : start + _DIGEST], data[start + _DIGEST :]
    if len(digest) < _DIGEST or hashlib.sha256(payload).digest() != digest:
        raise _Unusable("its checksum does not match: it is truncated or altered")
    return payload


def sources_from(readers: Iterable[tuple[str, Callable[[], str]]], *, gone: bool = False
                 ) -> Callable[[str, int], _Source | None]:  # fmt: skip
    """What an entry's file positions are bound to on loading: each file's reader, by its name
    (the key holds the file's content, so the reader gives the text the positions were read in).
    ``gone``: a file without a reader (deleted since) is bound to no text: the entry holds files
    one by one, and the caller uses only those whose content it checked."""
    by_name = dict(readers)
    made: dict[str, _Source] = {}

    def source(file: str, size: int) -> _Source | None:
        if file in made:
            return made[file]
        read = by_name.get(file)
        if read is None and gone:
            read = str
        if read is None:
            return None
        made[file] = _Source(None, file, size=size, read=read)
        return made[file]

    return source


_README = """\
metasync's cache of loaded manifests (docs/cache.md): safe to delete; never commit it.
"""
