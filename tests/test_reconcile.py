"""The control plane's whole job (issue 18): a reconcile that self-heals the environments whose
policy says autoSync and only reports the others, its status matrix (the run's output and
`metasync status --control`), notifications of drift and failures, the task types plan, apply
(a saved plan), test and export, schedules (conductor-oss) and the global parallelism."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import conductor_server
from faultproxy import FaultProxy
from flavours import on
from helpers import prefixed_example, run_cli, secret_holder
from metasync import operations as op
from metasync.project import Project
from test_control import install, project
from test_docs import compare
from test_notify import Receiver
from test_worker import committed, finished, worker

pytestmark = pytest.mark.server

UNREACHABLE = "http://127.0.0.1:9"


SECRET = "rc-9Tz4-never-shown"


def with_secret(root: Path, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task definition of the project holding a secret, whose value the workers' environment
    has (and no output or log may show)."""
    secret_holder(root, prefix, "METASYNC_TEST_RECONCILE_TOKEN")
    monkeypatch.setenv("METASYNC_TEST_RECONCILE_TOKEN", SECRET)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def test_a_reconcile_heals_what_may_be_healed_reports_the_rest_and_notifies(
    conductor: conductor_server.Server, conductor_b: conductor_server.Server, prefix: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    """env00 (autoSync) is applied, env01 (no autoSync) only reported, env02 cannot be read: the
    run completes, its matrix says so, `status --control` shows the same, the worker's webhook
    hears of all three and env01's own webhook of env01 alone."""
    install(conductor.url, "--owner-email", "platform@example.com")
    root = tmp_path / "repo"
    names = project(root, prefix, [conductor.url, conductor_b.url, UNREACHABLE], 3)
    with Receiver() as fleet, Receiver() as own:
        for name, extra in (("env00", {"policy": {"autoSync": True}}),
                            ("env01", {"notify": [own.url]})):  # fmt: skip
            path = root / "environments" / name / "environment.yaml"
            path.write_text(json.dumps({**json.loads(path.read_text()), **extra}))
        committed(root)
        domain = prefix.strip("_")
        with worker(conductor.url, domain, tmp_path / "w", "--notify", fleet.url) as process:
            started = run_cli("control", "start", "--control", conductor.url, "--repository",
                              str(root), "--ref", "main", "--apply", "--domain", domain,
                              "--wait", "120")  # fmt: skip
            out = stop(process)
        assert started.exit_code == 1, started.stdout + started.stderr  # env02 failed
        workflow_id = started.stdout.splitlines()[0]
        shown = run_cli("status", "--control", conductor.url, "--workflow", workflow_id,
                        "-o", "json")  # fmt: skip
        latest = run_cli("status", "--control", conductor.url)
        execution = httpx.get(f"{conductor.url}/api/workflow/{workflow_id}").json()
    assert execution["status"] == "COMPLETED"
    matrix = execution["output"]["status"]
    assert json.loads(shown.stdout) == matrix
    assert not compare("reconcile status", [matrix])  # as docs/json.md says, key by key
    assert shown.exit_code == 1
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    assert matrix["commit"] == head  # main, resolved once for every environment
    states = {c["environment"]: c for c in matrix["environments"]}
    assert [states[n]["state"] for n in names] == ["applied", "drifted", "failed"]
    assert states["env00"]["applied"] == {"landed": 1, "total": 1, "ok": True}
    assert states["env01"]["applied"] is None
    assert not states["env01"]["autoSync"]
    assert "cannot reach" in states["env02"]["error"]
    assert matrix["summary"] == {"in-sync": 0, "applied": 1, "drifted": 1, "failed": 1}
    work = next(r for r in matrix["resources"] if r["name"] == f"{prefix}work")
    assert work["cells"] == {"env00": {"drift": "missing-live", "applied": "landed"},
                             "env01": {"drift": "missing-live", "applied": None}}  # fmt: skip
    # healed on env00's server, untouched on env01's
    assert httpx.get(f"{conductor.url}/api/metadata/taskdefs/{prefix}work").status_code == 200
    assert httpx.get(f"{conductor_b.url}/api/metadata/taskdefs/{prefix}work").status_code != 200
    # the run on the control plane: the sync and drift tasks, the report
    kinds = {t["referenceTaskName"]: t["taskType"] for t in execution["tasks"]}
    assert kinds["sync_env00"] == "metasync_sync"
    assert kinds["drift_env01"] == "metasync_drift"
    # the table a person reads
    assert latest.exit_code == 1, latest.stderr
    assert f"{prefix}work" in latest.stdout
    for line in ("env00: applied", "env01: drifted", "env02: failed: "):
        assert line in latest.stdout, latest.stdout
    # notifications: the fleet's hook of every environment, env01's own of env01 alone
    (told,) = fleet.bodies
    assert "1 applied, 1 drifted, 1 failed (3 environment(s))" in told["text"]
    assert [c["environment"] for c in told["metasync"]["environments"]] == names
    (env01,) = own.bodies
    assert [c["environment"] for c in env01["metasync"]["environments"]] == ["env01"]
    assert "1 drifted (1 environment(s))" in env01["text"]
    assert "metasync_report project @" in out


def test_a_self_heal_waits_for_the_environment_s_apply_lock(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    """One apply per environment at a time: while another run holds env00's lock, its sync task
    waits (it does not fail: a join may take a failed attempt for the result before its retry
    is scheduled); once the lock is released, it applies."""
    install(conductor.url, "--owner-email", "platform@example.com")
    root = tmp_path / "repo"
    project(root, prefix, [conductor.url], 1)
    path = root / "environments" / "env00" / "environment.yaml"
    path.write_text(json.dumps({**json.loads(path.read_text()), "policy": {"autoSync": True}}))
    committed(root)
    domain = prefix.strip("_")
    with worker(conductor.url, domain, tmp_path / "w") as process:
        with op.lock.locked(Project(root), "env00", "a test holding the lock"):
            started = run_cli("control", "start", "--control", conductor.url, "--repository",
                              str(root), "--apply", "--domain", domain)  # fmt: skip
            workflow_id = started.stdout.strip()
            first_task(conductor.url, workflow_id, "sync_env00", "IN_PROGRESS")
            time.sleep(3)  # the worker finds the lock held, and waits
            released = time.time() * 1000
        done = finished(conductor.url, workflow_id, seconds=120)
        stop(process)
    (sync,) = [t for t in done["tasks"] if t["referenceTaskName"] == "sync_env00"]
    assert sync["status"] == "COMPLETED"
    assert sync["startTime"] < released < sync["endTime"]
    assert sync["outputData"]["applied"]["ok"] is True
    (column,) = done["output"]["status"]["environments"]
    assert column["state"] == "applied", column


def first_task(url: str, workflow_id: str, ref: str, status: str) -> dict[str, Any]:
    """The first task ``ref`` of the run to reach ``status``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks = httpx.get(f"{url}/api/workflow/{workflow_id}").json().get("tasks", [])
        found = [t for t in tasks if t["referenceTaskName"] == ref and t["status"] == status]
        if found:
            return dict(found[0])
        time.sleep(0.2)
    raise AssertionError(f"no {ref} task {status} in 60 s")


def test_a_saved_plan_is_applied_by_the_workers_and_refused_once_stale(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """metasync_plan's output is metasync_apply's input: what it reviewed lands; the same plan
    again is a no-op; after a live edit of an object it creates, it is withheld, nothing
    written. No output or log holds the secret it writes."""
    install(conductor.url, "--owner-email", "platform@example.com")
    root = prefixed_example(tmp_path / "repo", prefix, conductor.url)
    with_secret(root, prefix, monkeypatch)
    commit = committed(root)
    common = {"repository": str(root), "commit": commit, "environment": "dev"}
    plan_task = {"name": "metasync_plan", "taskReferenceName": "plan", "type": "SIMPLE",
                 "inputParameters": common}  # fmt: skip

    def apply_task(plan: str) -> dict[str, Any]:
        return {"name": "metasync_apply", "taskReferenceName": "apply", "type": "SIMPLE",
                "inputParameters": {**common, "plan": plan}}  # fmt: skip

    workflows = {f"{prefix}plan_then_apply": [plan_task, apply_task("${plan.output}")],
                 f"{prefix}apply_a_plan": [apply_task("${workflow.input.plan}")]}  # fmt: skip
    httpx.put(f"{conductor.url}/api/metadata/workflow", json=[
        {"name": name, "version": 1, "schemaVersion": 2, "ownerEmail": "platform@example.com",
         "tasks": tasks}
        for name, tasks in workflows.items()
    ]).raise_for_status()  # fmt: skip
    domain = prefix.strip("_")

    def run(name: str, **given: Any) -> dict[str, Any]:
        started = httpx.post(f"{conductor.url}/api/workflow", json={
            "name": name, "version": 1, "taskToDomain": {"*": domain}, "input": given,
        }, timeout=30)  # fmt: skip
        started.raise_for_status()
        return finished(conductor.url, started.text, seconds=120)

    with worker(conductor.url, domain, tmp_path / "w") as process:
        fresh = run(f"{prefix}plan_then_apply")
        planned, applying = fresh["tasks"]
        saved = planned["outputData"]
        # nothing left to do: a plan of dev now is a no-op
        after = run_cli("--project", str(root), "plan", "--env", "dev", "--detailed-exitcode")
        again = run(f"{prefix}apply_a_plan", plan=saved)  # what it reviewed is there: a no-op
        # a live edit of an object the plan creates: the plan no longer says what would land
        edited = next(c["name"] for c in saved["changes"] if c["kind"] == "TaskDef"
                      and c["action"] == "create")  # fmt: skip
        live = httpx.get(f"{conductor.url}/api/metadata/taskdefs/{edited}").json()
        httpx.put(f"{conductor.url}/api/metadata/taskdefs",
                  json={**live, "description": "edited by hand"}).raise_for_status()  # fmt: skip
        stale = run(f"{prefix}apply_a_plan", plan=saved)
        log = stop(process)
    held = httpx.get(f"{conductor.url}/api/metadata/taskdefs/{prefix}secret_holder").json()
    assert held["inputTemplate"] == {"token": SECRET}  # written, and shown nowhere
    assert SECRET not in json.dumps([fresh, again, stale]) + log
    assert saved["kind"] == "metasync-plan"
    assert saved["commit"] == commit
    creates = [c for c in saved["changes"] if c["action"] == "create"]
    assert creates
    assert fresh["status"] == "COMPLETED", applying.get("reasonForIncompletion")
    applied = applying["outputData"]
    assert applied["ok"]
    assert applied["landed"] == len(creates)
    assert {(o["name"], o["result"]) for o in applied["outcomes"]} == {
        (c["name"], "landed") for c in creates
    }
    assert after.exit_code == 0, after.stdout
    assert again["status"] == "COMPLETED"
    assert again["tasks"][0]["outputData"]["outcomes"] == []
    (refused,) = stale["tasks"]  # not retried
    assert refused["status"] == "FAILED_WITH_TERMINAL_ERROR"
    assert "the saved plan is stale" in refused["reasonForIncompletion"]
    assert refused["outputData"]["withheld"] is True
    assert refused["outputData"]["landed"] == 0
    assert [r["name"] for r in refused["outputData"]["refused"]] == [edited]
    assert "changed on the server" in refused["outputData"]["refused"][0]["reason"]
    live = httpx.get(f"{conductor.url}/api/metadata/taskdefs/{edited}").json()
    assert live["description"] == "edited by hand"  # nothing written


def test_test_and_export_tasks_return_the_commands_documents(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    install(conductor.url, "--owner-email", "platform@example.com")
    root = prefixed_example(tmp_path / "repo", prefix, conductor.url)
    with_secret(root, prefix, monkeypatch)
    commit = committed(root)
    assert run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve").exit_code == 0
    name = f"{prefix}test_and_export"
    common = {"repository": str(root), "commit": commit, "environment": "dev"}
    httpx.put(f"{conductor.url}/api/metadata/workflow", json=[{
        "name": name, "version": 1, "schemaVersion": 2, "ownerEmail": "platform@example.com",
        "tasks": [
            {"name": "metasync_test", "taskReferenceName": "test", "type": "SIMPLE",
             "inputParameters": common},
            {"name": "metasync_export", "taskReferenceName": "export", "type": "SIMPLE",
             "inputParameters": common},
        ],
    }]).raise_for_status()  # fmt: skip
    domain = prefix.strip("_")
    with worker(conductor.url, domain, tmp_path / "w") as process:
        started = httpx.post(f"{conductor.url}/api/workflow", json={
            "name": name, "version": 1, "taskToDomain": {"*": domain}, "input": {},
        }, timeout=30)  # fmt: skip
        done = finished(conductor.url, started.text, seconds=300)
        log = stop(process)
    assert SECRET not in json.dumps(done) + log
    assert done["status"] == "COMPLETED", done.get("reasonForIncompletion")
    tested, exported = (t["outputData"] for t in done["tasks"])
    expected = json.loads(run_cli("--project", str(root), "test", "--env", "dev",
                                  "-o", "json").stdout)  # fmt: skip
    assert tested["kind"] == "metasync-test-report"
    assert tested["commit"] == commit
    assert tested["summary"] == expected["summary"]
    assert tested["summary"]["passed"] > 0
    assert [t["name"] for t in tested["tests"]] == [t["name"] for t in expected["tests"]]
    files = exported["files"]
    workflow = next(p for p in files if p.endswith(f"{prefix}order_to_cash.yaml"))
    assert f"name: {prefix}order_to_cash" in files[workflow]
    assert exported["environment"] == "dev"
    assert exported["formatVersion"] == 1
    holder = next(p for p in files if p.endswith(f"{prefix}secret_holder.yaml"))
    assert "((secrets.token))" in files[holder]  # the server's value, as git's placeholder


def test_a_server_s_own_worker_pool_is_its_limit(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    """The per-server limit (docs/cli.md, control install): a pool of workers of its own (domain
    D, --threads 1), and the reconcile of that server's environments started in D: its tasks
    run on that pool only, one at a time; a worker of another domain gets none."""
    install(conductor.url, "--owner-email", "platform@example.com")
    with FaultProxy(conductor.url, shares={"delay": 1.0}, delay=(0.2, 0.2)) as slow:
        root = tmp_path / "repo"
        project(root, prefix, [slow.url, UNREACHABLE], 6)  # env00, 02, 04 on the slow one
        commit = committed(root)
        domain = prefix.strip("_")
        with (worker(conductor.url, f"{domain}_a", tmp_path / "a", "--threads", "1") as pool,
              worker(conductor.url, f"{domain}_b", tmp_path / "b", "--threads", "4") as other):  # fmt: skip
            started = run_cli("control", "start", "--control", conductor.url, "--repository",
                              str(root), "--commit", commit, "--env", "env00", "--env", "env02",
                              "--env", "env04", "--domain", f"{domain}_a", "--wait", "120")  # fmt: skip
            pooled, others = stop(pool), stop(other)
    assert started.exit_code == 2, started.stdout + started.stderr  # drift, no failure
    execution = httpx.get(f"{conductor.url}/api/workflow/{started.stdout.splitlines()[0]}").json()
    drifts = [t for t in execution["tasks"] if t["taskType"] == "metasync_drift"]
    assert sorted(t["referenceTaskName"] for t in drifts) == ["drift_env00", "drift_env02",
                                                             "drift_env04"]  # fmt: skip
    assert {t["domain"] for t in drifts} == {f"{domain}_a"}
    spans = sorted((t["startTime"], t["endTime"]) for t in drifts)
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans)), spans
    assert pooled.count("metasync_drift env0") == 3
    assert "metasync_drift env" not in others


def test_parallelism_caps_the_tasks_that_run_at_once_across_workers(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    """--parallelism 1: two workers of two threads, three environments behind a slow target, and
    no two drift tasks ever overlap; installed again without it, the limit is lifted. (A task
    held back by the limit is offered again after the server's postpone duration, 60 s by
    default: this test takes a few minutes.)"""
    install(conductor.url, "--owner-email", "platform@example.com", "--parallelism", "1")
    drift = httpx.get(f"{conductor.url}/api/metadata/taskdefs/metasync_drift").json()
    assert drift["concurrentExecLimit"] == 1
    try:
        with FaultProxy(conductor.url, shares={"delay": 1.0}, delay=(0.2, 0.2)) as slow:
            root = tmp_path / "repo"
            project(root, prefix, [slow.url], 3)
            commit = committed(root)
            domain = prefix.strip("_")
            with (worker(conductor.url, domain, tmp_path / "w1") as one,
                  worker(conductor.url, domain, tmp_path / "w2") as two):  # fmt: skip
                started = run_cli("control", "start", "--control", conductor.url,
                                  "--repository", str(root), "--commit", commit,
                                  "--domain", domain, "--wait", "400")  # fmt: skip
                stop(one)
                stop(two)
        assert started.exit_code == 2, started.stdout + started.stderr  # drift, no failure
        execution = httpx.get(
            f"{conductor.url}/api/workflow/{started.stdout.splitlines()[0]}"
        ).json()
        spans = sorted((t["startTime"], t["endTime"]) for t in execution["tasks"]
                       if t["taskType"] == "metasync_drift")  # fmt: skip
        assert len(spans) == 3
        assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans)), spans
    finally:
        install(conductor.url, "--owner-email", "platform@example.com")
    lifted = httpx.get(f"{conductor.url}/api/metadata/taskdefs/metasync_drift").json()
    assert lifted.get("concurrentExecLimit", 0) == 0


def ended_run(url: str, repository: str, seconds: float) -> str:
    """The id of the first reconcile of ``repository`` started by metasync that has ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = httpx.get(f"{url}/api/workflow/metasync_reconcile/correlated/metasync_reconcile",
                         params={"includeClosed": "true"}).json()  # fmt: skip
        for run in runs:
            if run["input"].get("repository") == repository and run["status"] != "RUNNING":
                return str(run["workflowId"])
        time.sleep(1)
    raise AssertionError(f"no reconcile of {repository} ended in {seconds} s")


@on("oss")
def test_a_schedule_on_the_control_plane_runs_the_reconcile_of_a_branch(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    project(root, prefix, [conductor.url], 2)
    committed(root)
    domain = prefix.strip("_")
    name = f"{prefix}every_two_seconds"
    installed = install(conductor.url, "--owner-email", "platform@example.com", "--schedule",
                        "*/2 * * * * *", "--repository", str(root), "--domain", domain,
                        "--schedule-name", name)  # fmt: skip
    assert f"WorkflowSchedule {name}" in installed
    try:
        schedule = httpx.get(f"{conductor.url}/api/scheduler/schedules/{name}").json()
        assert schedule["startWorkflowRequest"]["input"]["ref"] == "main"
        with worker(conductor.url, domain, tmp_path / "w") as process:
            ran = ended_run(conductor.url, str(root), seconds=90)
            stop(process)
        shown = run_cli("status", "--control", conductor.url, "--workflow", ran)
    finally:
        httpx.delete(f"{conductor.url}/api/scheduler/schedules/{name}")
    assert shown.exit_code == 2, shown.stdout + shown.stderr  # the task def is missing: drift
    assert "env00: drifted" in shown.stdout
    assert "env01: drifted" in shown.stdout


@on("3.15")
def test_a_schedule_on_3_15_is_refused_with_the_cron_way(
    conductor: conductor_server.Server,
) -> None:
    result = run_cli("control", "install", "--control", conductor.url, "--schedule",
                     "0 */10 * * * *", "--repository", "https://git.example.com/fleet.git")  # fmt: skip
    assert result.exit_code == 1
    assert "has no scheduler: --schedule needs conductor-oss 3.32+ or Orkes" in result.stderr
    assert "metasync control start --control URL" in result.stderr
    assert "Traceback" not in result.stderr
    secret = run_cli("control", "start", "--control", conductor.url, "--repository",
                     "https://bot:s3cr3t-token@git.example.com/fleet.git")  # fmt: skip
    assert secret.exit_code == 1
    short = run_cli("control", "start", "--control", conductor.url, "--repository",
                    "https://git.example.com/fleet.git", "--commit", "9a3ce66")  # fmt: skip
    assert short.exit_code == 1
    assert "--commit '9a3ce66' is not a full commit id" in short.stderr
    assert "holds credentials" in secret.stderr
    assert "s3cr3t-token" not in secret.stdout + secret.stderr
