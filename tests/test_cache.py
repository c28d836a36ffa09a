"""The cache of loaded manifests and fingerprints (.metasync/cache/): never stale, never trusted
when damaged, the same output warm as cold."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import conductor_server
import metasync
from helpers import committed_example, git, prefixed_example, run_cli, write_project
from metasync import project as project_module
from metasync.conductor.normalize import Flavour
from metasync.errors import Problem
from metasync.manifests import cache as cache_module
from metasync.manifests import loader as loader_module
from metasync.manifests import yamlio
from metasync.model.checks import check_resources
from metasync.model.resource import Resource

WF = """\
apiVersion: metasync/v1
kind: WorkflowDef
metadata: {name: NAME}
spec:
  ownerEmail: team@example.com
  tasks:
    - {name: w1, taskReferenceName: t1}
    - {name: w2, taskReferenceName: t2, retryCont: 1}
"""
TASKS = """\
apiVersion: metasync/v1
kind: TaskDef
metadata: {name: w1}
spec: {ownerEmail: team@example.com}
---
apiVersion: metasync/v1
kind: TaskDef
metadata: {name: w2}
spec: {ownerEmail: team@example.com}
"""


def small(root: Path) -> Path:
    return write_project(
        root, {"manifests/a.yaml": WF.replace("NAME", "a"), "manifests/tasks.yaml": TASKS}
    )


def validate(root: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("--project", str(root), *args, "validate", "--env", "dev", "--warnings", "all")
    return result.exit_code, result.stdout, result.stderr


def entries(root: Path) -> list[Path]:
    """The cached renders and fingerprints (not the files' hashes and loads kept beside them)."""
    found = (root / ".metasync" / "cache").glob("*/*.bin")
    return sorted(p for p in found if p.parent.name not in ("hashes", "files"))


def test_a_warm_run_says_what_a_cold_one_said_with_the_same_file_and_line(tmp_path: Path) -> None:
    root = small(tmp_path)
    cold = validate(root, "--no-cache")
    assert not entries(root)  # --no-cache writes nothing
    first = validate(root)  # computes and stores
    assert entries(root)
    warm = validate(root)  # from the cache: positions found again in the file
    assert cold == first == warm
    assert "manifests/a.yaml:8 tasks[ref=t2].retryCont: unknown field 'retryCont'" in warm[2]
    assert "valid: 3 resources" in warm[1]


def test_an_edit_is_seen(tmp_path: Path) -> None:
    root = small(tmp_path)
    assert validate(root)[0] == 0
    path = root / "manifests" / "a.yaml"
    path.write_text(
        path.read_text().replace("{name: w1,", "{name: w9,").replace("retryCont", "retryCount")
    )
    _code, _out, err = validate(root)
    assert "manifests/a.yaml:7 tasks[ref=t1].name: no TaskDef 'w9'" in err, err
    assert "retryCont" not in err
    # another file added: counted
    (root / "manifests" / "b.yaml").write_text(WF.replace("NAME", "b"))
    assert "valid: 4 resources" in validate(root)[1]


def test_a_file_is_read_again_only_when_its_stat_changed(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A warm run does not read every manifest to name its content: a file whose size, times
    and inode are as when it was hashed keeps its hash. An edit that keeps the size and puts
    the old modification time back is still seen (the change time moved), and a file hashed
    within two seconds of its last change is hashed again (a change in the same tick)."""
    root = small(tmp_path)
    path = root / "manifests" / "a.yaml"
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))  # its change time is now: no waiting two seconds
    racy = cache_module._RACY_NS
    monkeypatch.setattr(cache_module, "_RACY_NS", 0)
    reads: list[Path] = []
    real = cache_module.file_key

    def counted(path: Path) -> str | None:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(cache_module, "file_key", counted)
    cache = cache_module.Cache(root)
    first = cache_module.FileHashes(cache)
    digest = first.of(path)
    first.keep()
    assert reads == [path]
    assert cache_module.FileHashes(cache).of(path) == digest  # its stat: not read again
    assert reads == [path]

    path.write_text(path.read_text().replace("retryCont", "retryCnt_"))  # the same size
    os.utime(path, (an_hour_ago, an_hour_ago))
    assert cache_module.FileHashes(cache).of(path) != digest
    assert reads == [path, path]

    monkeypatch.setattr(cache_module, "_RACY_NS", racy)
    fresh = root / "manifests" / "tasks.yaml"  # changed just now: hashed each time
    cache_module.FileHashes(cache).of(fresh)
    hashes = cache_module.FileHashes(cache)
    hashes.of(fresh)
    hashes.keep()
    cache_module.FileHashes(cache).of(fresh)
    assert reads[2:] == [fresh, fresh, fresh]
    # and the whole command sees the edit
    assert "retryCnt_" in validate(root)[2]
    # a damaged file of hashes is said once, and rewritten
    (kept,) = (root / ".metasync" / "cache" / "hashes").glob("*.bin")
    kept.write_bytes(kept.read_bytes()[:-5])
    _code, _out, err = validate(root)
    assert err.count("a cache file was damaged") == 1, err
    assert "warning: .metasync/cache/hashes/" in err
    assert "a cache file was damaged" not in validate(root)[2]


def test_after_an_edit_only_the_edited_file_is_loaded_again(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """An edit misses the whole environment's entry, but each file's load is kept on its own: the
    files that did not change are not parsed again, and what is said is what a run without the
    cache says (the duplicate and the warnings of unchanged files included)."""
    root = small(tmp_path)
    (root / "manifests" / "b.yaml").write_text(WF.replace("NAME", "b"))
    (root / "manifests" / "c.yaml").write_text(WF.replace("NAME", "c"))
    assert validate(root)[0] == 0
    parsed: list[str] = []
    real = yamlio.parse_documents

    def counted(text: str, display: str, read: Any = None) -> Any:
        parsed.append(display)
        return real(text, display, read)

    monkeypatch.setattr(loader_module, "parse_documents", counted)
    path = root / "manifests" / "b.yaml"
    path.write_text(path.read_text().replace("{name: w1,", "{name: w9,"))
    (root / "manifests" / "c2.yaml").write_text(WF.replace("NAME", "a"))  # a's twin
    (root / "manifests" / "c.yaml").unlink()
    warm = validate(root)
    assert sorted(parsed) == ["manifests/b.yaml", "manifests/c2.yaml"]
    assert warm == validate(root, "--no-cache")
    assert "manifests/b.yaml:7 tasks[ref=t1].name: no TaskDef 'w9'" in warm[2]
    assert "WorkflowDef a v1 is defined twice: here and at manifests/a.yaml" in warm[2]
    assert "manifests/a.yaml:8 tasks[ref=t2].retryCont" in warm[2]  # unchanged file: still said


def test_the_cache_can_be_turned_off_by_the_environment(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("METASYNC_NO_CACHE", "1")
    root = small(tmp_path)
    assert validate(root)[0] == 0
    assert not entries(root)


def test_a_checkout_of_another_commit_and_a_moved_pin_are_seen(tmp_path: Path) -> None:
    root = small(tmp_path)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / ".gitignore").write_text(".metasync/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one workflow")
    first = git(root, "rev-parse", "HEAD")
    (root / "manifests" / "b.yaml").write_text(WF.replace("NAME", "b"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "two workflows")
    second = git(root, "rev-parse", "HEAD")
    assert "valid: 4 resources" in validate(root)[1]
    git(root, "checkout", "-q", first)
    assert "valid: 3 resources" in validate(root)[1]
    git(root, "checkout", "-q", second)
    assert "valid: 4 resources" in validate(root)[1]
    # a pinned environment reads its commit; the pin moves, the render follows
    env = root / "environments" / "dev" / "environment.yaml"
    plain = env.read_text()
    env.write_text(plain + f"promotion:\n  ref: {first}\n")
    assert "valid: 3 resources" in validate(root)[1]
    env.write_text(plain + f"promotion:\n  ref: {second}\n")
    assert "valid: 4 resources" in validate(root)[1]
    env.write_text(plain + f"promotion:\n  ref: {first}\n")
    _code, out, err = validate(root)
    assert "valid: 3 resources" in out
    assert f"manifests/a.yaml@{first[:7]}:8 tasks[ref=t2].retryCont" in err  # its line, its commit


def test_an_upgrade_of_metasync_computes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = small(tmp_path)
    assert "0 warning(s)" not in validate(root)[1]
    before = entries(root)

    # the new version checks more: a stale entry of the old one would not show its warning
    def more(resources: list[Resource], flavour: Flavour | None) -> list[Problem]:
        found = check_resources(resources, flavour)
        return [*found, Problem("new check", None, "fix it", "warning", "unknown-field")]

    monkeypatch.setattr(project_module, "check_resources", more)
    assert "new check" not in validate(root)[2]  # same version: the cache answers
    monkeypatch.setattr(metasync, "__version__", "99.0.0")
    _code, _out, err = validate(root)
    assert "warning: new check" in err
    assert len(entries(root)) == len(before) + 1
    assert all(b"99.0.0" in p.read_bytes()[:200] for p in set(entries(root)) - set(before))


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign", "misplaced"])
def test_a_damaged_cache_file_is_ignored_with_a_warning_and_rewritten(
    tmp_path: Path, damage: str
) -> None:
    root = small(tmp_path)
    right = validate(root)
    assert right[0] == 0
    (entry,) = entries(root)
    data = entry.read_bytes()
    if damage == "flip":
        at = len(data) - 200
        entry.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    elif damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "foreign":
        entry.write_bytes(b"not a cache file at all\n" + data[100:])
    else:  # a whole, valid entry of another state of the project, in this one's place
        other = tmp_path / "other"
        shutil.copytree(root, other)
        (other / "manifests" / "a.yaml").write_text(WF.replace("NAME", "zzz").replace("w2,", "w8,"))
        shutil.rmtree(other / ".metasync")
        assert "no TaskDef 'w8'" in validate(other)[2]
        (wrong,) = entries(other)
        entry.write_bytes(wrong.read_bytes())
    code, out, err = validate(root)
    assert code == 0
    assert "valid: 3 resources for dev (2 warning(s))" in out  # its own, and the cache's
    assert right[2] in err  # the right answer, not the damaged file's
    assert "zzz" not in out + err
    assert "w8" not in err
    assert err.count("a cache file was damaged") == 1
    assert "warning: .metasync/cache/desired/" in err
    assert "[cache-corrupt]" in err
    # rewritten: the next run is quiet again
    assert validate(root) == right


def test_a_read_only_cache_folder_fails_nothing(tmp_path: Path) -> None:
    root = small(tmp_path)
    (root / ".metasync").mkdir()
    (root / ".metasync" / "cache").write_text("a file where the folder should be\n")
    right = validate(root, "--no-cache")
    assert validate(root) == right
    assert validate(root) == right


# -- with a server ----------------------------------------------------------------------------------


def plan_json(root: Path) -> dict[str, Any]:
    result = run_cli("--project", str(root), "plan", "--env", "dev", "-o", "json")
    assert result.exit_code in (0, 2), result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def test_plan_json_is_the_same_cold_and_warm_and_sees_a_server_change(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    root = prefixed_example(tmp_path / "project", prefix, conductor.url)
    result = run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr
    shutil.rmtree(root / ".metasync" / "cache", ignore_errors=True)
    cold = plan_json(root)
    warm = plan_json(root)
    assert cold == warm
    assert {c["action"] for c in cold["changes"]} == {"noop"}
    # the server's object changes behind the cache's back: the remembered fingerprints must not
    # hide it
    name = next(c["name"] for c in cold["changes"] if c["kind"] == "WorkflowDef")
    original = api.get(f"/metadata/workflow/{name}", params={"version": 1}).json()
    changed = {**original, "description": "changed on the server"}
    assert api.put("/metadata/workflow", json=[changed]).status_code == 200
    updates = [c for c in plan_json(root)["changes"] if c["action"] != "noop"]
    assert [(u["name"], u["action"]) for u in updates] == [(name, "update")]
    assert api.put("/metadata/workflow", json=[original]).status_code == 200
    assert {c["action"] for c in plan_json(root)["changes"]} == {"noop"}


def test_a_warm_plan_sees_an_edit_of_git(tmp_path: Path, prefix: str,
                                        conductor: conductor_server.Server) -> None:  # fmt: skip
    root = committed_example(tmp_path / "project", prefix, conductor.url)
    result = run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert {c["action"] for c in plan_json(root)["changes"]} == {"noop"}
    path = root / "manifests" / "workflows" / "payment_processing.yaml"
    text = path.read_text()
    assert "  description: " in text
    path.write_text(text.replace("  description: ", "  description: Edited in git. ", 1))
    updates = [c for c in plan_json(root)["changes"] if c["action"] == "update"]
    assert len(updates) == 1
