"""A worker's trees of a repository at given commits (metasync/worker/checkouts.py): each task at
its own commit, fetched by id into the worker's own mirror, never a shared working tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from metasync.errors import ConfigError
from metasync.worker.checkouts import Checkouts, FetchFailed


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Path, list[str]]:
    """A repository with three commits of metasync.yaml: (path, their ids, oldest first)."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commits = []
    for n in range(3):
        (repo / "metasync.yaml").write_text(f"name: p{n}\n")
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"c{n}")
        commits.append(git(repo, "rev-parse", "HEAD"))
    return repo, commits


def test_each_commit_has_its_own_tree_fetched_once(tmp_path: Path,
                                                    origin: tuple[Path, list[str]]) -> None:  # fmt: skip
    repo, commits = origin
    checkouts = Checkouts(tmp_path / "cache")
    with (
        checkouts.at(str(repo), commits[0]) as first,
        checkouts.at(str(repo), commits[1]) as second,
    ):
        assert (first / "metasync.yaml").read_text() == "name: p0\n"
        assert (second / "metasync.yaml").read_text() == "name: p1\n"
        assert first != second
        assert git(first, "rev-parse", "HEAD") == commits[0]
    # the mirror holds them now: the remote is not asked again
    shutil.rmtree(repo)
    with checkouts.at(str(repo), commits[0].upper()) as again:
        assert (again / "metasync.yaml").read_text() == "name: p0\n"
        assert again == first
    # an edit in one task's tree is not in the repository's own working tree, nor another's
    assert not (tmp_path / "origin").exists()


def test_a_branch_or_a_short_id_is_refused_with_what_to_give(tmp_path: Path,
                                                              origin: tuple[Path, list[str]]) -> None:  # fmt: skip
    repo, commits = origin
    checkouts = Checkouts(tmp_path / "cache")
    for name in ("main", commits[0][:12], ""):
        with pytest.raises(ConfigError) as refused, checkouts.at(str(repo), name):
            pass
        problem = refused.value.problems[0]
        assert "is not a full commit id" in problem.message
        assert "git rev-parse" in (problem.hint or "")
    assert not (tmp_path / "cache" / "mirrors").exists()  # nothing fetched


def test_a_commit_the_repository_does_not_have_is_said(tmp_path: Path,
                                                        origin: tuple[Path, list[str]]) -> None:  # fmt: skip
    repo, _ = origin
    with pytest.raises(ConfigError) as refused, Checkouts(tmp_path / "c").at(str(repo), "ab" * 20):
        pass
    assert f"{repo} has no commit {'ab' * 20}" in refused.value.problems[0].message


def test_a_remote_that_serves_no_commit_by_id_is_fetched_whole(
    tmp_path: Path, origin: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over git's protocol v0, with uploadpack.allowReachableSHA1InWant off, a remote refuses a
    want of a commit that no branch points at: its branches are fetched, the commit found there."""
    repo, commits = origin
    git(repo, "config", "uploadpack.allowReachableSHA1InWant", "false")
    for key, value in {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.version",
                       "GIT_CONFIG_VALUE_0": "0"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    other = tmp_path / "other.git"
    git(tmp_path, "init", "-q", "--bare", str(other))
    refused = subprocess.run(["git", "--git-dir", str(other), "fetch", "-q", f"file://{repo}",
                              commits[1]], capture_output=True, text=True, check=False)  # fmt: skip
    assert refused.returncode != 0  # the case this test is about
    checkouts = Checkouts(tmp_path / "cache")
    with checkouts.at(f"file://{repo}", commits[1]) as tree:
        assert (tree / "metasync.yaml").read_text() == "name: p1\n"
    (mirror,) = (tmp_path / "cache" / "mirrors").iterdir()
    assert git(mirror, "rev-parse", "refs/remotes/origin/main") == commits[2]


def test_a_password_in_the_url_is_not_in_the_error(tmp_path: Path) -> None:
    url = "http://deploy:s3cr3t-token@127.0.0.1:9/org/repo.git"  # port 9: nothing listens
    with pytest.raises(ConfigError) as refused, Checkouts(tmp_path / "c").at(url, "cd" * 20):
        pass
    said = str(refused.value.problems[0])
    assert "cannot fetch http://deploy:***@127.0.0.1:9/org/repo.git" in said
    assert "s3cr3t" not in said


def test_threads_at_one_commit_share_one_tree(
    tmp_path: Path, origin: tuple[Path, list[str]]
) -> None:
    repo, commits = origin
    checkouts = Checkouts(tmp_path / "cache")

    def read(commit: str) -> tuple[Path, str]:
        with checkouts.at(str(repo), commit) as tree:
            return tree, (tree / "metasync.yaml").read_text()

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(read, [commits[i % 3] for i in range(24)]))
    for i, (tree, text) in enumerate(found):
        assert text == f"name: p{i % 3}\n"
        assert tree == found[i % 3][0]
    assert len(list((tmp_path / "cache" / "trees").iterdir())) == 3


def test_old_trees_are_removed_but_not_one_in_use(tmp_path: Path,
                                                  origin: tuple[Path, list[str]]) -> None:  # fmt: skip
    repo, commits = origin
    checkouts = Checkouts(tmp_path / "cache", keep=1)
    trees = tmp_path / "cache" / "trees"

    def age(tree: Path) -> None:
        os.utime(tree, (1, 1))  # used long ago

    with checkouts.at(str(repo), commits[0]) as held:
        age(held)
        with checkouts.at(str(repo), commits[1]) as other:
            age(other)
        assert held.exists()  # past keep, but in use
        assert not other.exists()  # past keep, oldest, free: removed
        assert (held / "metasync.yaml").read_text() == "name: p0\n"
    with checkouts.at(str(repo), commits[2]):
        pass
    assert sorted(p.name[-40:] for p in trees.iterdir()) == [commits[2]]
    with checkouts.at(str(repo), commits[1]) as back:  # removed: made again
        assert (back / "metasync.yaml").read_text() == "name: p1\n"


def test_a_ref_is_resolved_to_the_commit_it_is_at_now(tmp_path: Path,
                                                      origin: tuple[Path, list[str]]) -> None:  # fmt: skip
    """A branch, a tag (an annotated one: the commit it names, not the tag object); a ref the
    repository lacks is the input's error; a repository that cannot be read may be retried."""
    repo, commits = origin
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "tag", "-a", "v1", "-m", "v1",
        commits[1])  # fmt: skip
    git(repo, "tag", "light", commits[0])
    checkouts = Checkouts(tmp_path / "cache")
    assert checkouts.resolve(str(repo), "main") == commits[2]
    assert checkouts.resolve(str(repo), "v1") == commits[1]
    assert checkouts.resolve(str(repo), "light") == commits[0]
    assert checkouts.resolve(str(repo), "refs/heads/main") == commits[2]
    with pytest.raises(ConfigError) as missing:
        checkouts.resolve(str(repo), "nowhere")
    assert not isinstance(missing.value, FetchFailed)  # terminal: a retry finds no more
    assert "has no branch or tag 'nowhere'" in missing.value.problem.message
    with pytest.raises(FetchFailed) as unreadable:
        checkouts.resolve("https://bot:s3cr3t@127.0.0.1:9/fleet.git", "main")
    assert "cannot read https://bot:***@127.0.0.1:9/fleet.git" in unreadable.value.problem.message
    assert "s3cr3t" not in str(unreadable.value.problem)
