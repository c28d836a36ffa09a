"""metasync on Conductor itself (issue 18): `metasync control install` writes metasync's task types
and metasync_reconcile to a control plane, applied by metasync; workers poll them; one reconcile
run fans out over a project's environments (FORK_JOIN_DYNAMIC) and returns each one's drift."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import conductor_server
from conftest import start_server
from faultproxy import FaultProxy
from helpers import run_cli
from test_worker import committed, finish_on_another, finished, worker

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def conductor_c(flavour: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[conductor_server.Server]:  # fmt: skip
    """A third server of the flavour: three targets."""
    yield from start_server(f"pytest-c-{flavour}", tmp_path_factory, flavour)


def install(url: str, *extra: str) -> str:
    result = run_cli("control", "install", "--control", url, *extra)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def test_install_writes_the_definitions_once(
    conductor: conductor_server.Server, prefix: str
) -> None:
    """(Other tests install with another owner: this one's first install always writes.)"""
    owner = f"{prefix.strip('_')}@example.com"
    first = install(conductor.url, "--owner-email", owner)
    assert "WorkflowDef metasync_reconcile v1" in first
    assert "TaskDef metasync_sync" in first
    assert "landed" in first
    assert "Nothing to install: the control plane has these definitions." in install(
        conductor.url, "--owner-email", owner
    )
    drift = httpx.get(f"{conductor.url}/api/metadata/taskdefs/metasync_drift").json()
    assert drift["ownerEmail"] == owner
    assert drift["ownerApp"].startswith("metasync/metasync-control@")
    assert drift["responseTimeoutSeconds"] == 300
    reconcile = httpx.get(f"{conductor.url}/api/metadata/workflow/metasync_reconcile").json()
    assert [t["type"] for t in reconcile["tasks"]] == [
        "SIMPLE", "FORK_JOIN_DYNAMIC", "JOIN", "SIMPLE",
    ]  # fmt: skip


def project(root: Path, prefix: str, targets: list[str], count: int) -> list[str]:
    """A project of ``count`` environments, spread over ``targets``; their names."""
    (root / "manifests").mkdir(parents=True)
    (root / "metasync.yaml").write_text(f"name: {prefix}fleet\n")
    (root / "manifests" / "work.yaml").write_text(
        "apiVersion: metasync/v1\nkind: TaskDef\n"
        f"metadata: {{name: {prefix}work}}\nspec: {{ownerEmail: team@example.com}}\n"
    )
    names = [f"env{n:02d}" for n in range(count)]
    for n, name in enumerate(names):
        folder = root / "environments" / name
        folder.mkdir(parents=True)
        (folder / "environment.yaml").write_text(json.dumps({
            "server": {"url": targets[n % len(targets)]},
            "promotion": {"from": None, "ref": None},
        }) + "\n")  # fmt: skip
    return names


def test_one_reconcile_returns_the_drift_of_30_environments_despite_a_killed_worker(
    conductor: conductor_server.Server, conductor_b: conductor_server.Server,
    conductor_c: conductor_server.Server, prefix: str, tmp_path: Path,
) -> None:  # fmt: skip
    """Three targets (each answering 0.5 s late), 30 environments, two workers of two threads;
    the first is killed (SIGKILL) with tasks in hand: their tasks time out after the response
    timeout and run on the second. Every environment has its drift, once."""
    install(conductor.url, "--owner-email", "platform@example.com", "--response-timeout", "4")
    servers = [conductor, conductor_b, conductor_c]
    with (
        FaultProxy(servers[0].url, shares={"delay": 1.0}, delay=(0.5, 0.5)) as a,
        FaultProxy(servers[1].url, shares={"delay": 1.0}, delay=(0.5, 0.5)) as b,
        FaultProxy(servers[2].url, shares={"delay": 1.0}, delay=(0.5, 0.5)) as c,
    ):
        root = tmp_path / "repo"
        names = project(root, prefix, [a.url, b.url, c.url], 30)
        commit = committed(root)
        domain = prefix.strip("_")
        started = httpx.post(f"{conductor.url}/api/workflow", json={
            "name": "metasync_reconcile", "version": 1, "taskToDomain": {"*": domain},
            "input": {"repository": str(root), "commit": commit},
        }, timeout=30)  # fmt: skip
        started.raise_for_status()
        workflow_id = started.text
        with worker(conductor.url, domain, tmp_path / "w1") as first:
            deadline = time.monotonic() + 60
            while len(a.log) + len(b.log) + len(c.log) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)  # drift tasks in hand
            first.kill()
            first.wait()
        found, out = finish_on_another(conductor.url, domain, tmp_path / "w2", workflow_id, 180)
    assert found["status"] == "COMPLETED", found.get("reasonForIncompletion")
    output: dict[str, Any] = found["output"]
    assert output["environments"] == names
    (join,) = [t for t in found["tasks"] if t["taskType"] == "JOIN"]
    results = join["outputData"]  # each environment's document, by its task's reference
    assert sorted(results) == sorted(f"drift_{n}" for n in names)
    for name in names:
        (report,) = results[f"drift_{name}"]["environments"]
        assert report["environment"] == name
        assert report["error"] is None, report
        # git's task definition is not on any target: each environment says so
        assert [
            (d["type"], d["name"]) for d in report["drift"] if d["name"] == f"{prefix}work"
        ] == [("missing-live", f"{prefix}work")]
    drifts = [t for t in found["tasks"] if t["taskType"] == "metasync_drift"]
    done = [t["referenceTaskName"] for t in drifts if t["status"] == "COMPLETED"]
    assert sorted(done) == sorted(f"drift_{n}" for n in names)  # each once
    timed_out = [t for t in drifts if t["status"] == "TIMED_OUT"]
    assert timed_out, "the killed worker held no task"
    assert all(t["retryCount"] == 0 for t in timed_out)
    assert "metasync worker: stopped" in out


def test_the_reconcile_takes_a_selection_and_refuses_an_unknown_environment(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    install(conductor.url, "--owner-email", "platform@example.com")
    root = tmp_path / "repo"
    project(root, prefix, [conductor.url], 3)
    commit = committed(root)
    domain = prefix.strip("_")

    def reconcile(**given: Any) -> dict[str, Any]:
        started = httpx.post(f"{conductor.url}/api/workflow", json={
            "name": "metasync_reconcile", "version": 1, "taskToDomain": {"*": domain},
            "input": {"repository": str(root), "commit": commit, **given},
        }, timeout=30)  # fmt: skip
        started.raise_for_status()
        return finished(conductor.url, started.text)

    with worker(conductor.url, domain, tmp_path / "w") as process:
        some = reconcile(environments=["env02", "env00"])
        unknown = reconcile(environments="env01,nowhere")
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert some["status"] == "COMPLETED"
    assert some["output"]["environments"] == ["env02", "env00"]
    assert [c["environment"] for c in some["output"]["status"]["environments"]] == [
        "env02", "env00",
    ]  # fmt: skip
    (join,) = [t for t in some["tasks"] if t["taskType"] == "JOIN"]
    assert sorted(join["outputData"]) == ["drift_env00", "drift_env02"]
    assert unknown["status"] == "FAILED"
    (listing,) = unknown["tasks"]
    assert listing["status"] == "FAILED_WITH_TERMINAL_ERROR"
    assert "has no environment 'nowhere'" in listing["reasonForIncompletion"]
    assert subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True,
                          text=True, check=True).stdout == ""  # fmt: skip
