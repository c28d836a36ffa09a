"""manifests/ as they were at a commit, read from git objects (no checkout, no clone)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from metasync.errors import ConfigError, Location
from metasync.lazy import lazy_module
from metasync.manifests.loader import MANIFESTS_DIR, ManifestSource
from metasync.manifests.yamlio import decode_text

if TYPE_CHECKING:
    import git
else:  # imported when a pin, `changed` or `promote` first reads git (metasync/lazy.py)
    git = lazy_module("git")


def open_repo(root: Path) -> git.Repo:
    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ConfigError(
            "the project is not in a git repository, so promotion pins cannot be read",
            location=Location(str(root)),
            hint="Run `git init` and commit the project, or set promotion.ref: null.",
        ) from None


def resolve_commit(
    repo: git.Repo, ref: str, where: Location | None, what: str = "promotion.ref"
) -> git.Commit:
    try:
        return repo.commit(ref)
    except (git.BadName, ValueError, git.GitCommandError):
        raise ConfigError(
            f"{what} {ref!r} is not a commit in this repository",
            location=where,
            hint="Use a commit hash (or a tag or branch) that exists; `git log` lists them"
            + (
                " (a CI checkout needs fetch-depth: 0 to see the base)."
                if what == "--base"
                else "."
            ),
        ) from None


def manifests_at(root: Path, commit: git.Commit) -> ManifestSource:
    """(display name, reader) for every manifest file of ``commit``; names read ``file@abc1234``."""
    repo_root = Path(commit.repo.working_tree_dir or root).resolve()
    prefix = PurePosixPath(root.resolve().relative_to(repo_root).as_posix()) / MANIFESTS_DIR
    short = commit.hexsha[:7]
    try:
        tree = commit.tree / prefix.as_posix()
    except KeyError:
        return []
    project = prefix.parent
    source = []
    for item in tree.traverse():
        if not isinstance(item, git.Blob):
            continue
        path = PurePosixPath(str(item.path))
        if path.suffix in (".yaml", ".yml"):
            relative = path if str(project) == "." else path.relative_to(project)
            display = f"{relative.as_posix()}@{short}"
            source.append((display, _BlobReader(item, display)))
    return sorted(source, key=lambda pair: pair[0])


class _BlobReader:
    """Reads a committed manifest; its content is named by git's blob id (no read needed)."""

    __slots__ = ("blob", "display")

    def __init__(self, blob: git.Blob, display: str) -> None:
        self.blob = blob
        self.display = display

    def __call__(self) -> str:
        return decode_text(self.blob.data_stream.read(), self.display)

    def content_key(self) -> str:
        return f"git-blob:{self.blob.hexsha}"


def commit_file_on_branch(repo: git.Repo, base: git.Commit, path: str, content: str, *,
                          branch: str, message: str) -> git.Commit:  # fmt: skip
    """A commit on a new ``branch``: ``base`` with ``path`` set to ``content``."""
    return commit_files_on_branch(repo, base, {path: content}, branch=branch, message=message)


def commit_files_on_branch(repo: git.Repo, base: git.Commit, files: Mapping[str, str], *,
                           branch: str, message: str) -> git.Commit:  # fmt: skip
    """A commit on a new ``branch``: ``base`` with each path of ``files`` set to its content.

    Built with a private index and plumbing commands, so the user's checkout, index and current
    branch are untouched.
    """
    if branch in [h.name for h in repo.heads]:
        raise ConfigError(
            f"branch {branch!r} already exists",
            hint="Pass another name with --branch, or delete the old branch.",
        )
    env = {**os.environ, **_identity(repo)}
    with tempfile.TemporaryDirectory() as tmp:
        env["GIT_INDEX_FILE"] = os.path.join(tmp, "index")
        repo.git.read_tree(base.hexsha, env=env)
        for n, (path, content) in enumerate(sorted(files.items())):
            blob_file = Path(tmp) / f"blob{n}"
            blob_file.write_text(content)
            blob = repo.git.hash_object("-w", str(blob_file), env=env)
            repo.git.update_index("--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = repo.git.write_tree(env=env)
        sha = repo.git.commit_tree(tree, "-p", base.hexsha, "-m", message, env=env)
    repo.git.update_ref(f"refs/heads/{branch}", sha)
    return repo.commit(sha)


def _identity(repo: git.Repo) -> dict[str, str]:
    """Commit as the user when git knows them, else as metasync."""
    reader = repo.config_reader()
    name = reader.get_value("user", "name", default="")
    email = reader.get_value("user", "email", default="")
    if name and email:
        return {}
    return {
        "GIT_AUTHOR_NAME": "metasync", "GIT_AUTHOR_EMAIL": "metasync@localhost",
        "GIT_COMMITTER_NAME": "metasync", "GIT_COMMITTER_EMAIL": "metasync@localhost",
    }  # fmt: skip


_PIN = re.compile(
    r"^(promotion:[^\n]*\n(?:[ \t]+[^\n]*\n|[ \t]*\n)*?[ \t]+ref:[ \t]*)([^\n#]*?)([ \t]*(#[^\n]*)?)$",
    re.M,
)


def set_pin(text: str, commit: str) -> str:
    """environment.yaml with ``promotion.ref`` set to ``commit``, comments and layout kept."""
    if not text.endswith("\n"):
        text += "\n"
    match = _PIN.search(text)
    if match is not None:
        return text[: match.start(2)] + commit + text[match.end(2) :]
    block = re.search(r"^promotion:[ \t]*\n", text, re.M)
    if block is not None:
        return text[: block.end()] + f"  ref: {commit}\n" + text[block.end() :]
    if re.search(r"^promotion:", text, re.M):
        raise ConfigError(
            "cannot set promotion.ref: write promotion as a block (promotion:\\n  ref: ...)",
            hint="Edit environment.yaml so that promotion is a block mapping.",
        )
    return text + f"promotion:\n  ref: {commit}\n"


def push_branch(repo: git.Repo, remote: str, branch: str) -> None:
    try:
        repo.git.push(remote, f"refs/heads/{branch}:refs/heads/{branch}")
    except git.GitCommandError as exc:
        raise ConfigError(
            f"the branch {branch} was created but could not be pushed to {remote}: "
            f"{str(exc.stderr).strip()}",
            hint=f"Push it yourself: git push {remote} {branch}",
        ) from None


def head_commit(root: Path) -> str | None:
    """The commit checked out at ``root``, or None outside git (for the record only)."""
    try:
        return git.Repo(root, search_parent_directories=True).head.commit.hexsha
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None


@contextmanager
def checkout_at(root: Path, ref: str) -> Iterator[Path]:
    """The project as committed at ``ref``, checked out in a temporary worktree of its repository
    (so promotion pins still resolve); the worktree is removed afterwards."""
    repo = open_repo(root)
    commit = resolve_commit(repo, ref, None, "--base")
    repo_root = Path(repo.working_tree_dir or root).resolve()
    with tempfile.TemporaryDirectory(prefix="metasync-base-") as tmp:
        target = Path(tmp) / "tree"
        repo.git.worktree("add", "--detach", "--quiet", str(target), commit.hexsha)
        try:
            yield target / root.resolve().relative_to(repo_root)
        finally:
            repo.git.worktree("remove", "--force", str(target))


def remote_identity(root: Path) -> str | None:
    """A project name from the repository's remote (``origin``, or the only one): its path on the
    host (``acme/orders``), and the project's folder inside the repository, as one name
    (``acme-orders``, ``acme-platform-conductor``); the same in every clone, whatever its folder.
    None outside a repository or without a remote."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    remotes = {r.name: r for r in repo.remotes}
    remote = remotes.get("origin") or (next(iter(remotes.values())) if len(remotes) == 1 else None)
    if remote is None:
        return None
    try:
        url = next(iter(remote.urls))
    except (StopIteration, git.GitCommandError):
        return None
    path = re.sub(r"^[a-z+]+://[^/]*/|^[^/:]+@[^:]+:", "", url.rstrip("/")).removesuffix(".git")
    parts = [p for p in path.split("/") if p][-2:]
    inside = root.resolve().relative_to(Path(repo.working_tree_dir or root).resolve()).parts
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join([*parts, *inside])).strip("._-")
    return name or None
