"""A worker's trees of a repository at given commits (issue 18: metasync as Conductor workers).

A task names a repository and a commit; the worker needs that commit's files on disk (a project
folder: metasync.yaml, environments/, manifests/) and must never share a working tree between
tasks, nor with anyone else. ``Checkouts`` keeps, in a folder of the worker's own:

* ``mirrors/<id>.git``: one bare repository per repository (``<id>`` a digest of its URL), into
  which each commit is fetched by its id (or, where the remote does not serve a commit by id,
  with every branch and tag, then looked up);
* ``trees/<id>-<commit>``: one detached worktree per repository and commit, shared read-only by
  the tasks that run at that commit, removed (least recently used first) past ``keep`` trees when
  no task holds it.

A commit is named by its full id (40 or 64 hex digits), never a branch: a task's result is the
result at that commit, whoever asks when. Threads of one worker share a ``Checkouts``; two worker
processes may share its folder too (each step that changes a mirror or the list of trees holds a
file lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from metasync.errors import ConfigError, Location, redact_url

#: a full commit id (SHA-1 or SHA-256), lower case
COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: git run by a worker never asks anyone anything (a prompt would hang the task)
_QUIET = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


class FetchFailed(ConfigError):
    """The repository could not be read: perhaps for a moment (the task is retried)."""


class Checkouts:
    def __init__(self, folder: Path, keep: int = 16) -> None:
        self.folder = folder
        self.keep = keep
        self._lock = threading.RLock()
        self._held: dict[Path, int] = {}  # trees in use by this process's tasks

    @contextlib.contextmanager
    def at(self, repository: str, commit: str) -> Iterator[Path]:
        """The tree of ``repository`` (a URL or a local path git can fetch from) at ``commit``,
        held while the block runs (no other task of this worker removes it meanwhile)."""
        commit = commit.strip().lower()
        if not COMMIT_ID.fullmatch(commit):
            raise ConfigError(
                f"commit {commit!r} is not a full commit id",
                location=Location("task input", None, "commit"),
                hint="Give the 40-hex-digit id (`git rev-parse <ref>`): a branch moves, and a "
                "result must say which commit it is of.",
            )
        mirror = self._mirror(repository, commit)
        tree = self.folder / "trees" / f"{mirror.stem}-{commit}"
        with self._lock:
            self._held[tree] = self._held.get(tree, 0) + 1
        try:
            with self._locked():
                if not (tree / ".git").exists():
                    shutil.rmtree(tree, ignore_errors=True)  # a tree left half made
                    _git(mirror, "worktree", "prune")
                    _git(mirror, "worktree", "add", "--detach", "--quiet", str(tree), commit)
                os.utime(tree)  # recently used: removed last
            yield tree
        finally:
            with self._lock:
                self._held[tree] -= 1
                if not self._held[tree]:
                    del self._held[tree]
            self._evict()

    def resolve(self, repository: str, ref: str) -> str:
        """The commit ``ref`` (a branch or tag of ``repository``) is at now."""
        # an annotated tag's commit is its peeled line (^{}), listed only when asked for
        done = subprocess.run(["git", "ls-remote", "--", repository, ref, f"{ref}^{{}}"],
                              capture_output=True, text=True, env={**os.environ, **_QUIET},
                              check=False)  # fmt: skip
        if done.returncode != 0:
            raise _unreadable("read", repository, done)
        found = {}
        for line in done.stdout.splitlines():
            commit, _, name = line.partition("\t")
            found[name] = commit
        # exactly the ref, else a branch, else a tag (an annotated one: the commit it names)
        for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
            if name in found:
                return found[name]
        raise ConfigError(
            f"{redact_url(repository)} has no branch or tag {ref!r}",
            location=Location("task input", None, "ref"),
            hint="Give a branch or tag the repository has, or a full commit id as commit.",
        )

    def _mirror(self, repository: str, commit: str) -> Path:
        """The bare mirror of ``repository``, holding ``commit`` (fetched when it does not)."""
        ident = hashlib.sha256(repository.encode()).hexdigest()[:16]
        mirror = self.folder / "mirrors" / f"{ident}.git"
        with self._locked():
            if not (mirror / "HEAD").exists():
                mirror.mkdir(parents=True, exist_ok=True)
                _git(mirror, "init", "--bare", "--quiet")
            if _has(mirror, commit):
                return mirror
            fetched = _git(mirror, "fetch", "--quiet", "--no-tags", repository, commit, check=False)
            if fetched.returncode != 0 or not _has(mirror, commit):
                # a remote that serves no commit by its id (uploadpack.allowAnySHA1InWant off)
                everything = _git(mirror, "fetch", "--quiet", "--tags", repository,
                                  "+refs/heads/*:refs/remotes/origin/*", check=False)  # fmt: skip
                if everything.returncode != 0:
                    raise _unreadable("fetch", repository, everything)
            if not _has(mirror, commit):
                raise ConfigError(
                    f"{redact_url(repository)} has no commit {commit}",
                    location=Location("task input", None, "commit"),
                    hint="Push the commit first, or check that the id is of this repository.",
                )
        return mirror

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """This folder's lock: between this worker's threads, and other processes using it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.folder / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _evict(self) -> None:
        """Remove the least recently used trees past ``keep`` that no task of this worker holds."""
        trees = self.folder / "trees"
        with self._locked():
            try:
                found = sorted(trees.iterdir(), key=lambda p: p.stat().st_mtime)
            except OSError:
                return
            with self._lock:
                held = set(self._held)
            excess = len(found) - self.keep
            for tree in found:
                if excess <= 0:
                    break
                if tree in held or time.time() - tree.stat().st_mtime < 1:
                    continue  # in use here, or just made (perhaps by another worker)
                shutil.rmtree(tree, ignore_errors=True)
                excess -= 1
            for mirror in (self.folder / "mirrors").glob("*.git"):
                _git(mirror, "worktree", "prune", check=False)


def _unreadable(verb: str, repository: str,
                done: subprocess.CompletedProcess[str]) -> FetchFailed:  # fmt: skip
    said = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
    return FetchFailed(
        f"cannot {verb} {redact_url(repository)}: {redact_url(said)}",
        location=Location("task input", None, "repository"),
        hint="Check the repository's URL and that this worker may read it.",
    )


def _has(mirror: Path, commit: str) -> bool:
    found = _git(mirror, "cat-file", "-e", f"{commit}^{{commit}}", check=False)
    return found.returncode == 0


def _git(mirror: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["git", "--git-dir", str(mirror), *args]
    if args and args[0] == "init":
        command = ["git", "init", *args[1:], str(mirror)]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, **_QUIET}, check=False)  # fmt: skip
    if check and done.returncode != 0:
        raise ConfigError(f"git {args[0]} failed: {redact_url(done.stderr.strip())}")
    return done
