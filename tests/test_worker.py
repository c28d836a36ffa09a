"""`metasync worker` (issue 18): metasync's task types polled from a control-plane Conductor, run
at a task's commit, the command's JSON document as the task's output; SIGTERM lets the task in
hand finish. The control plane here is the test server itself (each test polls its own domain)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import conductor_server
from faultproxy import FaultProxy
from helpers import prefixed_example, run_cli, secret_holder

pytestmark = pytest.mark.server

METASYNC = str(Path(sys.executable).with_name("metasync"))


def committed(root: Path) -> str:
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project"]):  # fmt: skip
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


def control_plane(url: str, prefix: str, response_timeout: int = 60) -> str:
    """metasync_drift's task definition and a one-task workflow; the workflow's name."""
    with httpx.Client(base_url=url + "/api", timeout=30) as api:
        api.post("/metadata/taskdefs", json=[{
            "name": "metasync_drift", "ownerEmail": "platform@example.com", "retryCount": 1,
            "retryDelaySeconds": 1, "responseTimeoutSeconds": response_timeout,
            "timeoutSeconds": 300,
        }]).raise_for_status()  # fmt: skip
        name = f"{prefix}drift_one"
        api.put("/metadata/workflow", json=[{
            "name": name, "version": 1, "schemaVersion": 2, "ownerEmail": "platform@example.com",
            "tasks": [{"name": "metasync_drift", "taskReferenceName": "drift", "type": "SIMPLE",
                       "inputParameters": {k: f"${{workflow.input.{k}}}"
                                           for k in ("repository", "commit", "environment")}}],
        }]).raise_for_status()  # fmt: skip
    return name


def start(url: str, workflow: str, domain: str, given: dict[str, str]) -> str:
    answer = httpx.post(f"{url}/api/workflow", json={
        "name": workflow, "version": 1, "input": given, "taskToDomain": {"metasync_drift": domain},
    }, timeout=30)  # fmt: skip
    answer.raise_for_status()
    return answer.text


def finished(url: str, workflow_id: str, seconds: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found: dict[str, Any] = httpx.get(f"{url}/api/workflow/{workflow_id}", timeout=30).json()
        if found["status"] != "RUNNING":
            return found
        time.sleep(0.3)
    raise AssertionError(f"workflow {workflow_id} still running after {seconds} s")


def in_hand(slow: FaultProxy, control: str, workflow: str, domain: str, *, repository: str,
            commit: str) -> str:  # fmt: skip
    """Start ``workflow`` on ``control`` for dev and wait until a worker has its task in hand (it
    reads the target behind ``slow``); the workflow's id."""
    workflow_id = start(control, workflow, domain, {
        "repository": repository, "commit": commit, "environment": "dev"})  # fmt: skip
    deadline = time.monotonic() + 60
    while not slow.log and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow.log, "the worker never read the target"
    return workflow_id


@contextmanager
def worker(control: str, domain: str, cache: Path, *extra: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [METASYNC, "worker", "--control", control, "--domain", domain, "--cache", str(cache),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def finish_on_another(control: str, domain: str, cache: Path, workflow_id: str,
                      seconds: float) -> tuple[dict[str, Any], str]:  # fmt: skip
    """A worker started after another was killed: the run once it has ended, and that worker's
    log (it is stopped with SIGTERM)."""
    with worker(control, domain, cache) as second:
        found = finished(control, workflow_id, seconds=seconds)
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=60)
    return found, out


SECRET = "wk-7Hq2-never-shown"


def test_a_drift_task_returns_what_drift_o_json_says(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Its output and its log hold no secret value: a task definition carries one, and a live
    edit of that field makes the drift show it (masked)."""
    root = prefixed_example(tmp_path / "repo", prefix, conductor.url)
    holder = secret_holder(root, prefix, "METASYNC_TEST_WORKER_TOKEN")
    monkeypatch.setenv("METASYNC_TEST_WORKER_TOKEN", SECRET)  # the worker's too
    commit = committed(root)
    assert run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve").exit_code == 0
    live = httpx.get(f"{conductor.url}/api/metadata/taskdefs/{holder}").json()
    live["inputTemplate"] = {"token": "edited-by-hand"}
    httpx.put(f"{conductor.url}/api/metadata/taskdefs", json=live).raise_for_status()
    workflow = control_plane(conductor.url, prefix)  # on the same server: unmanaged-live there
    expected = json.loads(
        run_cli("--project", str(root), "drift", "--env", "dev", "-o", "json").stdout
    )
    domain = prefix.strip("_")
    with worker(conductor.url, domain, tmp_path / "cache", "--threads", "2") as process:
        ids = [start(conductor.url, workflow, domain, {"repository": str(root), "commit": commit,
                                                        "environment": "dev"}),
               start(conductor.url, workflow, domain, {"repository": str(root), "commit": "main",
                                                        "environment": "dev"}),
               start(conductor.url, workflow, domain, {"repository": str(root), "commit": commit,
                                                        "environment": "nowhere"})]  # fmt: skip
        done = [finished(conductor.url, i) for i in ids]
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    good, branch, unknown = (d["tasks"][0] for d in done)
    assert good["status"] == "COMPLETED", good
    assert good["outputData"] == {**expected, "commit": commit, "environment": "dev"}
    # wrong input fails for good (no retry), saying what to give
    assert branch["status"] == "FAILED_WITH_TERMINAL_ERROR", branch
    assert "'main' is not a full commit id" in branch["reasonForIncompletion"]
    assert unknown["status"] == "FAILED_WITH_TERMINAL_ERROR", unknown
    assert "has no environment 'nowhere'" in unknown["outputData"]["error"]["message"]
    assert "It has: dev, prod, qa" in unknown["outputData"]["error"]["hint"]
    assert len([d for d in done if len(d["tasks"]) == 1]) == 3  # none retried
    count = len(expected["environments"][0]["drift"])  # the test's own definitions, at least
    assert f"metasync_drift dev @ {commit[:12]}: {count} drifted" in out
    assert "metasync worker: stopped" in out
    drifted = {d["name"]: d for d in good["outputData"]["environments"][0]["drift"]}
    assert drifted[holder]["type"] == "live-edited"
    assert drifted[holder]["fields"][0] == {
        "path": "inputTemplate.token",
        "before": "(sensitive)",
        "after": "((secrets.token))",
    }
    assert SECRET not in json.dumps([d["tasks"] for d in done]) + out


def test_sigterm_lets_the_task_in_hand_finish(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    """The target answers slowly (each request 1.5 s later): SIGTERM arrives while the worker
    drifts; its result is still reported, then the worker exits 0."""
    with FaultProxy(conductor.url, shares={"delay": 1.0}, delay=(1.5, 1.5)) as slow:
        root = prefixed_example(tmp_path / "repo", prefix, slow.url)
        commit = committed(root)
        workflow = control_plane(conductor.url, prefix)
        domain = prefix.strip("_")
        with worker(conductor.url, domain, tmp_path / "cache") as process:
            workflow_id = in_hand(
                slow, conductor.url, workflow, domain, repository=str(root), commit=commit
            )
            process.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            out, _ = process.communicate(timeout=60)
            took = time.monotonic() - stopped_at
        found = finished(conductor.url, workflow_id, seconds=5)
    assert process.returncode == 0, out
    assert took >= 1.0, out  # it waited for the task, not only for the poll
    task = found["tasks"][0]
    assert task["status"] == "COMPLETED", (task, out)
    assert task["outputData"]["environments"][0]["environment"] == "dev"
    assert len(found["tasks"]) == 1
    assert out.index("stopping") < out.index(f"metasync_drift dev @ {commit[:12]}")


def test_a_task_whose_worker_was_killed_is_retried_on_another(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    """SIGKILL mid-task: no result is sent; the task definition's responseTimeoutSeconds times
    the task out, and its retry runs on the other worker: one result, the drift, reported once."""
    with FaultProxy(conductor.url, shares={"delay": 1.0}, delay=(1.5, 1.5)) as slow:
        root = prefixed_example(tmp_path / "repo", prefix, slow.url)
        commit = committed(root)
        workflow = control_plane(conductor.url, prefix, response_timeout=3)
        domain = prefix.strip("_")
        with worker(conductor.url, domain, tmp_path / "a") as first:
            workflow_id = in_hand(
                slow, conductor.url, workflow, domain, repository=str(root), commit=commit
            )
            first.kill()
            first.wait()
        found, out = finish_on_another(conductor.url, domain, tmp_path / "b", workflow_id, 90)
    attempts = [(t["status"], t["retryCount"]) for t in found["tasks"]]
    assert found["status"] == "COMPLETED", attempts
    assert attempts == [("TIMED_OUT", 0), ("COMPLETED", 1)]
    assert found["tasks"][1]["outputData"]["environments"][0]["environment"] == "dev"
    assert out.count(f"metasync_drift dev @ {commit[:12]}") == 1, out
