"""Safe apply against real servers of both flavours: versioning policy, prune, the lock, rollback."""

from __future__ import annotations

import getpass
import json
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import conductor_server
from faultproxy import FaultProxy
from helpers import prefixed_example, run_cli
from metasync.apply import history as history_module
from metasync.apply.lock import Holder, Locked, lock_name, take
from metasync.cli import cli as cli_group
from metasync.conductor.client import ConductorClient
from metasync.conductor.live import HISTORY_PREFIX, LEDGER_PREFIX, LOCK_PREFIX
from metasync.conductor.normalize import normalize
from metasync.model.tasks import walk_tasks

pytestmark = pytest.mark.server


@pytest.fixture
def project(tmp_path: Path, prefix: str, conductor: conductor_server.Server) -> Path:
    """The example, renamed with the test's prefix, as its own project (own mark, own lock)."""
    return prefixed_example(tmp_path / "project", prefix, conductor.url)


def set_policy(project: Path, policy: str) -> None:
    env_file = project / "environments" / "dev" / "environment.yaml"
    head = env_file.read_text().split("policy:")[0]
    env_file.write_text(head + "policy:\n" + "".join(f"  {line}\n" for line in policy.splitlines()))


def cli(project: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("--project", str(project), *args)
    return result.exit_code, result.stdout, result.stderr


def apply(project: Path, *args: str) -> str:
    code, out, err = cli(project, "apply", "--env", "dev", "--auto-approve", *args)
    assert code == 0, out + err
    return out


def plan(project: Path) -> dict[str, Any]:
    code, out, err = cli(project, "plan", "--env", "dev", "-o", "json")
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def pending(document: dict[str, Any]) -> dict[tuple[str, int | None], dict[str, Any]]:
    return {(c["name"], c["version"]): c for c in document["changes"] if c["action"] != "noop"}


def versions(api: httpx.Client, name: str) -> list[int]:
    return sorted(w["version"] for w in api.get("/metadata/workflow").json() if w["name"] == name)


def workflow(api: httpx.Client, name: str, version: int) -> dict[str, Any]:
    response = api.get(f"/metadata/workflow/{name}", params={"version": version})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


LEGACY = """\
apiVersion: metasync/v1
kind: WorkflowDef
metadata: {{name: {prefix}legacy_report}}
spec:
  version: 1
  ownerEmail: reports@example.com
  tasks:
    - {{name: {prefix}generate_invoice, taskReferenceName: render, type: SIMPLE}}
"""


# -- versioning policy --------------------------------------------------------------------------


def test_new_version_registers_a_changed_workflow_as_the_next_version_and_keeps_the_old(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    set_policy(project, "versioning: new-version")
    apply(project)
    before = workflow(api, f"{prefix}payment_processing", 1)
    edit(project / "manifests/workflows/payment_processing.yaml",
         "timeoutSeconds: 3600", "timeoutSeconds: 5400")  # fmt: skip

    changes = pending(plan(project))
    # the child becomes v2; its parent pins v2, so the parent becomes a new version too
    assert set(changes) == {(f"{prefix}payment_processing", 2), (f"{prefix}order_to_cash", 2)}
    child = changes[(f"{prefix}payment_processing", 2)]
    assert (child["action"], child["previousVersion"]) == ("create", 1)
    assert child["fields"] == [{"path": "timeoutSeconds", "before": 3600, "after": 5400}]
    parent = changes[(f"{prefix}order_to_cash", 2)]
    assert parent["fields"] == [
        {"path": "tasks[ref=pay_by_card].subWorkflowParam.version", "before": 1, "after": 2}
    ]
    _code, text, _ = cli(project, "plan", "--env", "dev")
    assert (
        f"+ WorkflowDef {prefix}payment_processing v2  (new version, 1 field(s) changed from v1 (v1 stays))"
        in text
    )

    out = apply(project)
    assert "2 of 2 change(s) landed." in out
    assert versions(api, f"{prefix}payment_processing") == [1, 2]
    assert (
        workflow(api, f"{prefix}payment_processing", 1) == before
    )  # the old version stays as it was
    assert workflow(api, f"{prefix}payment_processing", 2)["timeoutSeconds"] == 5400
    calls = [at.task for at in walk_tasks(workflow(api, f"{prefix}order_to_cash", 2))
             if at.ref == "pay_by_card"]  # fmt: skip
    assert calls[0]["subWorkflowParam"] == {"name": f"{prefix}payment_processing", "version": 2}
    assert pending(plan(project)) == {}  # converged: the newest versions carry git's content


def test_a_new_version_the_server_would_refuse_fails_at_plan_at_its_line(
    project: Path, prefix: str
) -> None:
    set_policy(project, "versioning: new-version")
    apply(project)
    edit(project / "manifests/workflows/invoicing.yaml",
         "      evaluatorType: value-param\n      expression: status\n",
         "      evaluatorType: javascript\n      expression: \"$.status ==\"\n")  # fmt: skip
    code, _, err = cli(project, "plan", "--env", "dev")
    assert code == 1
    assert err.startswith(
        "error: manifests/workflows/invoicing.yaml:39 tasks[ref=payment_status]: the server "
        f"refuses WorkflowDef {prefix}invoicing v1: "
    )


def test_in_place_changes_the_same_version(project: Path, prefix: str, api: httpx.Client) -> None:
    set_policy(project, "versioning: in-place")
    apply(project)
    edit(project / "manifests/workflows/payment_processing.yaml",
         "timeoutSeconds: 3600", "timeoutSeconds: 5400")  # fmt: skip
    changes = pending(plan(project))
    assert list(changes) == [(f"{prefix}payment_processing", 1)]
    assert changes[(f"{prefix}payment_processing", 1)]["action"] == "update"
    apply(project)
    assert versions(api, f"{prefix}payment_processing") == [1]
    assert workflow(api, f"{prefix}payment_processing", 1)["timeoutSeconds"] == 5400


def test_new_version_wants_one_version_of_each_workflow_in_git(project: Path, prefix: str) -> None:
    set_policy(project, "versioning: new-version")
    (project / "manifests/workflows/legacy.yaml").write_text(
        LEGACY.format(prefix=prefix)
        + "---\n"
        + LEGACY.format(prefix=prefix).replace("version: 1", "version: 2")
    )
    code, _, err = cli(project, "plan", "--env", "dev")
    assert code == 1
    assert (
        f"manifests/workflows/legacy.yaml:14 version: WorkflowDef {prefix}legacy_report v2: with "
        "policy.versioning new-version git holds one version of each workflow"
    ) in err


# -- prune ----------------------------------------------------------------------------------------


def hand_made(api: httpx.Client, name: str) -> None:
    response = api.post("/metadata/workflow", json={
        "name": name, "version": 1, "ownerEmail": "ui@example.com",
        "tasks": [{"name": "x", "taskReferenceName": "x", "type": "WAIT"}],
    })  # fmt: skip
    assert response.status_code == 200, response.text


def test_prune_deletes_a_managed_version_that_left_git_and_keeps_one_made_outside(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    (project / "manifests/workflows/legacy.yaml").write_text(LEGACY.format(prefix=prefix))
    set_policy(project, "prune: true")
    apply(project)
    hand_made(api, f"{prefix}made_in_the_ui")
    (project / "manifests/workflows/legacy.yaml").unlink()

    document = plan(project)
    assert pending(document) == {
        (f"{prefix}legacy_report", 1): pending(document)[(f"{prefix}legacy_report", 1)]
    }
    assert pending(document)[(f"{prefix}legacy_report", 1)]["action"] == "delete"
    assert {"kind": "WorkflowDef", "name": f"{prefix}made_in_the_ui", "version": 1,
            "managedByMetasync": False} in document["unmanaged"]  # fmt: skip

    out = apply(project)
    assert re.search(rf"WorkflowDef {prefix}legacy_report v1\s+│ delete\s+│ landed", out)
    assert versions(api, f"{prefix}legacy_report") == []
    assert versions(api, f"{prefix}made_in_the_ui") == [1]
    assert pending(plan(project)) == {}


def test_prune_deletes_an_event_handler_metasync_wrote_and_keeps_one_made_by_hand(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    set_policy(project, "prune: true")
    apply(project)
    made = {"name": f"{prefix}by_hand", "event": "conductor:x:y", "active": False,
            "actions": [{"action": "start_workflow", "start_workflow": {"name": "x"}}]}  # fmt: skip
    assert api.post("/event", json=made).status_code == 200
    (project / "manifests/event-handlers/on_order_shipped.yaml").unlink()

    document = plan(project)
    assert [(c["kind"], c["name"], c["action"]) for c in pending(document).values()] == [
        ("EventHandler", f"{prefix}on_order_shipped", "delete")
    ]
    assert {"kind": "EventHandler", "name": f"{prefix}by_hand", "version": None,
            "managedByMetasync": False} in document["unmanaged"]  # fmt: skip
    apply(project)
    names = {h["name"] for h in api.get("/event").json()}
    assert f"{prefix}on_order_shipped" not in names
    assert f"{prefix}by_hand" in names
    assert pending(plan(project)) == {}
    # the ledger (metasync's own record, since handlers have no field for the mark) is not listed
    internal = ("metasync_lock_", "metasync_ledger_")
    assert not [u for u in plan(project)["unmanaged"] if u["name"].startswith(internal)]
    assert api.get(f"/metadata/workflow/metasync_ledger_{prefix}order-to-cash").status_code == 200


def test_without_prune_a_managed_object_that_left_git_is_only_listed(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    (project / "manifests/workflows/legacy.yaml").write_text(LEGACY.format(prefix=prefix))
    apply(project)
    (project / "manifests/workflows/legacy.yaml").unlink()
    document = plan(project)
    assert pending(document) == {}
    assert {"kind": "WorkflowDef", "name": f"{prefix}legacy_report", "version": 1,
            "managedByMetasync": True} in document["unmanaged"]  # fmt: skip
    apply(project)
    assert versions(api, f"{prefix}legacy_report") == [1]


def test_prune_refuses_more_deletes_than_max_deletes(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    (project / "manifests/workflows/legacy.yaml").write_text(LEGACY.format(prefix=prefix))
    set_policy(project, "prune: true\nmaxDeletes: 1")
    apply(project)
    (project / "manifests/workflows/legacy.yaml").unlink()
    (project / "manifests/workflows/support.yaml").unlink()  # customer_notification goes too...
    for tested in ("customer_notification", "order_compensation"):  # (with their tests)
        (project / "manifests" / "tests" / f"{tested}.yaml").unlink()
    (project / "manifests/event-handlers/on_order_shipped.yaml").unlink()  # ...and what starts it
    edit(project / "manifests/workflows/order_to_cash.yaml",
         f"failureWorkflow: {prefix}order_compensation", "")  # fmt: skip
    edit(project / "manifests/taskdefs/billing.yaml", "retryCount: 2", "retryCount: 7")

    code, out, err = cli(project, "apply", "--env", "dev", "--auto-approve")
    assert code == 1
    assert "refused: prune would delete 4 object(s), more than policy.maxDeletes (1)" in out
    assert (
        "prune would delete 4 object(s), more than policy.maxDeletes (1): nothing is applied" in err
    )
    assert "raise policy.maxDeletes" in err
    assert versions(api, f"{prefix}legacy_report") == [1]
    assert api.get(f"/metadata/taskdefs/{prefix}generate_invoice").json()["retryCount"] == 2


def test_prune_refuses_when_git_names_nothing(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    set_policy(project, "prune: true\nmaxDeletes: 100")
    apply(project)
    for path in [*(project / "manifests").rglob("*.yaml"),
                 *(project / "environments").rglob("overlays/*.yaml")]:  # fmt: skip
        path.unlink()
    code, _, err = cli(project, "apply", "--env", "dev", "--auto-approve")
    assert code == 1
    assert "prune would delete 17 object(s) and git names nothing for dev" in err
    assert "metasync never prunes when the desired set is empty" in err
    assert versions(api, f"{prefix}order_to_cash") == [1]


def test_prune_keeps_a_version_with_a_running_execution_unless_forced(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    (project / "manifests/workflows/legacy.yaml").write_text(LEGACY.format(prefix=prefix))
    set_policy(project, "prune: true")
    apply(project)
    started = api.post(
        "/workflow", json={"name": f"{prefix}legacy_report", "version": 1, "input": {}}
    )
    assert started.status_code == 200, started.text
    execution = started.text.strip()
    try:
        (project / "manifests/workflows/legacy.yaml").unlink()
        _, out, _ = cli(project, "plan", "--env", "dev")
        assert (
            f"! blocked: 1 execution running (e.g. {execution}): not deleted without --force" in out
        )

        code, out, _err = cli(project, "apply", "--env", "dev", "--auto-approve")
        assert code == 1
        assert re.search(rf"WorkflowDef {prefix}legacy_report v1\s+│ delete\s+│ not landed", out)
        assert f"kept: 1 execution running (e.g. {execution})" in out
        assert "Pass --force to delete it all the same." in out
        assert versions(api, f"{prefix}legacy_report") == [1]

        out = apply(project, "--force")
        assert re.search(rf"WorkflowDef {prefix}legacy_report v1\s+│ delete\s+│ landed", out)
        assert versions(api, f"{prefix}legacy_report") == []
    finally:
        api.delete(f"/workflow/{execution}", params={"reason": "test over"})


def test_prune_keeps_a_workflow_a_live_one_still_calls_unless_forced(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    set_policy(project, "prune: true")
    apply(project)
    # invoicing leaves git, but order_to_cash (in git and live) still calls invoicing v1
    text = (project / "manifests/workflows/invoicing.yaml").read_text()
    (project / "manifests/workflows/invoicing.yaml").unlink()
    (project / "manifests/tests/invoicing.yaml").unlink()  # its tests go with it
    changes = pending(plan(project))
    delete = changes[(f"{prefix}invoicing", 1)]
    assert delete["action"] == "delete"
    assert delete["blocked"] == (  # the live order_to_cash is the one in git, after the apply
        f"still used by WorkflowDef {prefix}order_to_cash v1 (in git): not deleted without --force"
    )
    code, _out, _ = cli(project, "apply", "--env", "dev", "--auto-approve")
    assert code == 1
    assert versions(api, f"{prefix}invoicing") == [1]
    (project / "manifests/workflows/invoicing.yaml").write_text(text)
    assert pending(plan(project)) == {}


def test_a_protected_object_is_not_deleted_without_force(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    (project / "manifests/workflows/legacy.yaml").write_text(LEGACY.format(prefix=prefix))
    set_policy(project, f"prune: true\nprotect: ['{prefix}legacy_*']")
    apply(project)
    (project / "manifests/workflows/legacy.yaml").unlink()
    change = pending(plan(project))[(f"{prefix}legacy_report", 1)]
    assert change["blocked"] == (
        f"protected by policy.protect '{prefix}legacy_*': not deleted without --force"
    )
    code, _, _ = cli(project, "apply", "--env", "dev", "--auto-approve")
    assert code == 1
    assert versions(api, f"{prefix}legacy_report") == [1]
    apply(project, "--force")
    assert versions(api, f"{prefix}legacy_report") == []


# -- the lock ---------------------------------------------------------------------------------------


def test_a_held_lock_refuses_apply_naming_its_owner_and_unlock_clears_it(
    project: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
) -> None:  # fmt: skip
    with ConductorClient.connect(conductor.url, label="test") as client:
        held, _ = take(client, lock_name(f"{prefix}order-to-cash"), env="dev", command="apply", minutes=30,
                    owner="ci-run-42")  # fmt: skip
    code, out, err = cli(project, "apply", "--env", "dev", "--auto-approve")
    assert code == 1
    assert (
        f"error: dev is locked by ci-run-42 (apply), since {held.started:%Y-%m-%d %H:%M:%S} UTC"
        in err
    )
    assert f"run `metasync unlock --env dev {held.token}` (or wait until the lock expires)" in err
    assert out == ""
    assert versions(api, f"{prefix}order_to_cash") == []  # nothing written

    code, out, _ = cli(project, "unlock", "--env", "dev", held.token)
    assert code == 0
    assert "\nremoved the lock held by ci-run-42 (apply), since " in out
    apply(project)
    assert versions(api, f"{prefix}order_to_cash") == [1]
    assert cli(project, "unlock", "--env", "dev")[1] == "dev is not locked.\n"  # apply released it


def first_apply_holding_the_lock(project: Path, tmp_path: Path, url: str, *, slow_url: str,
                                 api: httpx.Client, prefix: str) -> subprocess.Popen[str]:  # fmt: skip
    """An apply of a copy of ``project`` through the slow proxy, in another process, once it holds
    the lock (or has ended)."""
    first_project = tmp_path / "first"
    shutil.copytree(project, first_project)
    env_file = first_project / "environments" / "dev" / "environment.yaml"
    env_file.write_text(env_file.read_text().replace(url, slow_url))
    exe = shutil.which("metasync") or str(Path(sys.executable).parent / "metasync")
    first = subprocess.Popen(
        [exe, "--project", str(first_project), "apply", "--env", "dev", "--auto-approve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    name = lock_name(f"{prefix}order-to-cash")
    for _ in range(600):  # until the first apply holds the lock (at most a minute)
        if api.get(f"/metadata/workflow/{name}").status_code == 200 or first.poll() is not None:
            break
        time.sleep(0.1)
    return first


def test_two_applies_at_once_one_runs_and_the_other_is_refused_with_its_owner(
    project: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    tmp_path: Path,
) -> None:  # fmt: skip
    """The first apply goes through a proxy that slows the server's validation down, so it is
    still running (holding the lock) when the second one starts, straight to the server."""
    slow = FaultProxy(conductor.url, shares={"delay": 1.0}, delay=(0.4, 0.4),
                      match=lambda method, path: path.endswith("/workflow/validate"))  # fmt: skip
    with slow:
        first = first_apply_holding_the_lock(
            project, tmp_path, conductor.url, slow_url=slow.url, api=api, prefix=prefix
        )
        try:
            code, out, err = cli(project, "apply", "--env", "dev", "--auto-approve")
        finally:
            first_out, first_err = first.communicate(timeout=120)
    assert code == 1
    assert re.search(rf"error: dev is locked by \S+ pid {first.pid} \(apply\), since ", err), err
    assert out == ""
    assert first.returncode == 0, first_out + first_err
    assert "17 of 17 change(s) landed." in first_out
    assert slow.counts["delay"] == 6  # the first apply was slowed down: one per workflow
    assert pending(plan(project)) == {}


def test_an_expired_lock_does_not_block(
    project: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    name = lock_name(f"{prefix}order-to-cash")
    with ConductorClient.connect(conductor.url, label="test") as client:
        take(client, name, env="dev", command="apply", minutes=30, owner="a run that died",
             now=datetime.now(UTC) - timedelta(hours=2))  # fmt: skip
    apply(project)
    assert versions(api, f"{prefix}order_to_cash") == [1]
    assert versions(api, name) == []  # the expired lock was replaced, then released


def test_two_runs_racing_for_the_lock_one_wins_the_other_is_told_who(
    conductor: conductor_server.Server, prefix: str, api: httpx.Client
) -> None:
    name = lock_name(f"{prefix}race")
    barrier = threading.Barrier(2)
    won: list[Holder] = []
    refused: list[str] = []

    def run(owner: str) -> None:
        with ConductorClient.connect(conductor.url, label="test") as client:
            barrier.wait()
            try:
                won.append(
                    take(client, name, env="dev", command="apply", minutes=5, owner=owner)[0]
                )
            except Locked as exc:
                refused.append(str(exc))

    threads = [threading.Thread(target=run, args=(owner,)) for owner in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1, (won, refused)
    assert len(refused) == 1
    assert f"dev is locked by {won[0].owner} (apply)" in refused[0]
    assert len(versions(api, name)) == 1  # the loser left nothing behind


# -- backups and rollback ---------------------------------------------------------------------------


def live_objects(api: httpx.Client, prefix: str) -> dict[tuple[str, str, int | None], Any]:
    found: dict[tuple[str, str, int | None], Any] = {}
    for spec in api.get("/metadata/taskdefs").json():
        if spec["name"].startswith(prefix):
            found["TaskDef", spec["name"], None] = spec
    for spec in api.get("/metadata/workflow").json():
        if spec["name"].startswith(prefix):
            found["WorkflowDef", spec["name"], spec["version"]] = spec
    for spec in api.get("/event").json():
        if spec["name"].startswith(prefix):
            found["EventHandler", spec["name"], None] = spec
    return found


def comparable(objects: dict[tuple[str, str, int | None], Any]) -> dict[Any, Any]:
    """What a definition is (normalised), plus who owns it; not when it was written."""
    return {
        key: (normalize(key[0], spec, "3.15"), spec.get("ownerApp"), spec.get("createTime"))
        for key, spec in objects.items()
    }


def test_rollback_restores_the_previous_live_definitions_exactly(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    apply(project)
    # someone made one object by hand before metasync owned it: rollback must give it back as is
    hand = api.get(f"/metadata/taskdefs/{prefix}post_to_ledger").json()
    hand["ownerApp"] = "made-by-hand"
    hand["retryCount"] = 9
    assert api.put("/metadata/taskdefs", json=hand).status_code == 200
    before = live_objects(api, prefix)

    edit(project / "manifests/taskdefs/billing.yaml", "retryCount: 2", "retryCount: 7")
    edit(project / "manifests/workflows/payment_processing.yaml",
         "timeoutSeconds: 3600", "timeoutSeconds: 5400")  # fmt: skip
    (project / "manifests/workflows/legacy.yaml").write_text(LEGACY.format(prefix=prefix))
    out = apply(project)
    assert "4 of 4 change(s) landed." in out  # 2 updates, post_to_ledger healed, 1 create
    backup = Path(re.search(r"Before-images saved in (\S+) ", out)[1])  # type: ignore[index]
    assert backup.parent == project / ".metasync" / "backups" / "dev"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    saved = json.loads(backup.read_text())
    assert {(o["name"], o["before"] is None) for o in saved["objects"]} == {
        (f"{prefix}generate_invoice", False), (f"{prefix}post_to_ledger", False),
        (f"{prefix}payment_processing", False), (f"{prefix}legacy_report", True),
    }  # fmt: skip
    assert comparable(live_objects(api, prefix)) != comparable(before)

    code, out, err = cli(project, "rollback", "--env", "dev", "--auto-approve")
    assert code == 0, out + err
    assert "Rolling dev back to revision 1." in out
    assert f"- WorkflowDef {prefix}legacy_report v1  (delete)" in out
    assert "~ TaskDef " + prefix + "generate_invoice  (update, 1 field(s))" in out
    assert "4 of 4 change(s) landed." in out
    assert "Recorded as revision 3 of dev" in out
    assert comparable(live_objects(api, prefix)) == comparable(before)

    # a plan against the before-images is now a no-op
    code, out, _ = cli(project, "rollback", "--env", "dev", backup.name, "--auto-approve")
    assert code == 0
    assert f"Nothing to restore: dev is as it was at the before-images in {backup}" in out
    # and so is the same rollback again: the newest revision is the rollback, and rolling back
    # after a rollback stays where it went (undoing it would re-apply what it undid)
    code, out, _ = cli(project, "rollback", "--env", "dev", "--auto-approve")
    assert code == 0
    assert "Nothing to restore: dev is as it was at revision 1." in out
    assert comparable(live_objects(api, prefix)) == comparable(before)
    assert [r["revision"] for r in history(project)] == [1, 2, 3]


def history(project: Path) -> list[dict[str, Any]]:
    code, out, err = cli(project, "history", "--env", "dev", "-o", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["kind"] == "metasync-history"
    revisions: list[dict[str, Any]] = document["revisions"]
    return revisions


def test_every_machine_sees_one_history_and_rolls_back_from_it(
    project: Path, prefix: str, api: httpx.Client, tmp_path: Path
) -> None:
    """Two CI jobs on different machines: the second has no local files of the first, and
    sees the same revisions (kept on the server) and rolls back from them."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    apply(project)
    edit(project / "manifests/taskdefs/billing.yaml", "retryCount: 2", "retryCount: 7")
    apply(project)
    elsewhere = tmp_path / "another-checkout"
    shutil.copytree(project, elsewhere, ignore=shutil.ignore_patterns(".metasync"))
    first, second = history(project), history(elsewhere)
    assert first == second
    # metasync's own history is never planned, nor listed as on the server but not in git (the
    # session's server also holds the control plane's definitions, metasync_drift and others:
    # a project of their own, listed as such)
    own = (LOCK_PREFIX, LEDGER_PREFIX, HISTORY_PREFIX)
    assert not [u for u in plan(project)["unmanaged"] if u["name"].startswith(own)]
    assert [(r["revision"], r["action"], r["result"]) for r in first] == [
        (1, "apply", "landed"), (2, "apply", "landed"),
    ]  # fmt: skip
    assert first[1]["changes"] == 1
    assert first[0]["changes"] > 1
    assert first[1]["who"].startswith(f"{getpass.getuser()}@")
    assert first[1]["planFingerprint"].startswith("sha256:")
    assert first[1]["started"] <= first[1]["finished"]

    code, out, err = cli(elsewhere, "rollback", "--env", "dev", "--auto-approve")
    assert code == 0, out + err
    assert "Rolling dev back to revision 1." in out
    assert "1 of 1 change(s) landed." in out
    assert api.get(f"/metadata/taskdefs/{prefix}generate_invoice").json()["retryCount"] == 2
    # twice, from the other machine: a no-op, and no new revision
    code, out, err = cli(project, "rollback", "--env", "dev", "--auto-approve")
    assert code == 0, out + err
    assert "Nothing to restore: dev is as it was at revision 1." in out
    revisions = history(project)
    assert [(r["revision"], r["action"], r["rollbackTo"]) for r in revisions] == [
        (1, "apply", None), (2, "apply", None), (3, "rollback", 1),
    ]  # fmt: skip
    code, out, _ = cli(project, "history", "--env", "dev")
    assert code == 0
    assert re.search(r"3 .* rollback to 1 .* landed .* 1 ", out), out


def test_rollback_to_a_revision_undoes_every_revision_after_it(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    apply(project)  # 1
    edit(project / "manifests/taskdefs/billing.yaml", "retryCount: 2", "retryCount: 7")
    apply(project)  # 2
    edit(project / "manifests/taskdefs/billing.yaml", "timeoutSeconds: 300", "timeoutSeconds: 900")
    (project / "manifests/workflows/legacy.yaml").write_text(LEGACY.format(prefix=prefix))
    apply(project)  # 3

    def invoice() -> tuple[int, int]:
        live = api.get(f"/metadata/taskdefs/{prefix}generate_invoice").json()
        return live["retryCount"], live["timeoutSeconds"]

    def rollback_to(revision: int) -> None:
        code, out, err = cli(project, "rollback", "--env", "dev", "--to", str(revision),
                             "--auto-approve")  # fmt: skip
        assert code == 0, out + err

    assert invoice() == (7, 900)
    rollback_to(2)
    assert invoice() == (7, 300)
    assert versions(api, f"{prefix}legacy_report") == []
    rollback_to(1)
    assert invoice() == (2, 300)
    rollback_to(3)  # forward again: revision 3's state, from the images the rollbacks recorded
    assert invoice() == (7, 900)
    assert versions(api, f"{prefix}legacy_report") == [1]
    assert [(r["revision"], r["rollbackTo"]) for r in history(project)][3:] == [
        (4, 2), (5, 1), (6, 3),
    ]  # fmt: skip

    code, _, err = cli(project, "rollback", "--env", "dev", "--to", "9")
    assert code == 1
    assert "error: dev has no revision 9 to roll back to (kept: revisions 1-6)" in err
    assert "Pass --to a revision from 0 to 6" in err


def test_the_history_keeps_the_newest_revisions_within_its_budget() -> None:
    def revision(number: int, size: int) -> history_module.Revision:
        return history_module.Revision(number, "apply", "", "", None, "", 1, size)

    small = [revision(n, 10) for n in range(1, 61)]
    kept = history_module._kept(revision(61, 10), small)
    assert [r.number for r in kept] == list(range(12, 62))  # the newest KEEP (50)
    big = history_module.BUDGET // 3
    kept = history_module._kept(
        revision(6, big), [revision(1, 10), revision(2, big), revision(3, big), revision(4, 10),
                           revision(5, big)]
    )  # fmt: skip
    assert [r.number for r in kept] == [4, 5, 6]  # revision 3 would pass the budget
    alone = history_module._kept(revision(7, history_module.BUDGET * 2), kept)
    assert [r.number for r in alone] == [7]  # the newest is kept, whatever its size


def test_before_images_past_the_servers_string_limit_are_kept(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    """Jackson refuses a JSON string of more than 5,000,000 characters: 6 MB of before-images
    must not be one string."""
    taskdefs = project / "manifests" / "taskdefs" / "big.yaml"
    documents = [
        f"apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {{name: {prefix}big_{i}}}\n"
        f"spec:\n  ownerEmail: big@example.com\n  description: {chr(97 + i) * 1_000_000}\n"
        for i in range(6)
    ]
    taskdefs.write_text("---\n".join(documents))
    apply(project)
    taskdefs.write_text("---\n".join(d.replace("big@", "large@") for d in documents))
    out = apply(project)
    assert "6 of 6 change(s) landed." in out
    newest = history(project)[-1]
    assert newest["bytes"] > 6_000_000
    assert newest["result"] == "landed"
    code, out, err = cli(project, "rollback", "--env", "dev", "--auto-approve")
    assert code == 0, out + err
    live = api.get(f"/metadata/taskdefs/{prefix}big_5").json()
    assert (live["ownerEmail"], live["description"]) == ("big@example.com", "f" * 1_000_000)


def test_the_local_copy_serves_a_revision_the_server_no_longer_keeps(
    project: Path, prefix: str, api: httpx.Client, tmp_path: Path
) -> None:
    apply(project)
    edit(project / "manifests/taskdefs/billing.yaml", "retryCount: 2", "retryCount: 7")
    apply(project)
    elsewhere = tmp_path / "another-checkout"
    shutil.copytree(project, elsewhere, ignore=shutil.ignore_patterns(".metasync"))
    name = f"metasync_history_{prefix}order-to-cash_dev"
    assert versions(api, name) == [1, 2]
    assert api.delete(f"/metadata/workflow/{name}/1").status_code == 200  # its images gone
    code, _, err = cli(elsewhere, "rollback", "--env", "dev", "--to", "0")
    assert code == 1
    assert f"error: revision 1 is no longer kept on the server ({name})" in err
    code, out, err = cli(project, "rollback", "--env", "dev", "--to", "0", "--auto-approve")
    assert code == 0, out + err  # this machine's copy of revision 1
    assert "Rolling dev back to before revision 1." in out
    assert versions(api, f"{prefix}order_to_cash") == []


def test_a_backup_file_from_another_machine_is_restored_from_its_path(
    project: Path, prefix: str, api: httpx.Client, tmp_path: Path
) -> None:
    apply(project)
    edit(project / "manifests/taskdefs/billing.yaml", "retryCount: 2", "retryCount: 7")
    out = apply(project)
    backup = Path(re.search(r"Before-images saved in (\S+) ", out)[1])  # type: ignore[index]
    artifact = tmp_path / "downloaded" / backup.name
    artifact.parent.mkdir()
    shutil.copy(backup, artifact)
    elsewhere = tmp_path / "another-checkout"
    shutil.copytree(project, elsewhere, ignore=shutil.ignore_patterns(".metasync"))
    code, out, err = cli(elsewhere, "rollback", "--env", "dev", str(artifact), "--auto-approve")
    assert code == 0, out + err
    assert f"Rolling dev back to the before-images in {artifact}" in out
    assert "1 of 1 change(s) landed." in out
    assert api.get(f"/metadata/taskdefs/{prefix}generate_invoice").json()["retryCount"] == 2
    assert [r["restoresFile"] for r in history(project)] == [None, None, artifact.name]


def test_rollback_with_no_history_says_so(project: Path) -> None:
    code, _, err = cli(project, "rollback", "--env", "dev")
    assert code == 1
    assert "error: .metasync/backups/dev" not in err
    assert "there is no revision of dev to roll back to" in err
    assert "`metasync apply` records each run as a revision" in err
    code, out, _ = cli(project, "history", "--env", "dev")
    assert code == 0
    assert out.startswith("dev has no revisions on http://")


def test_a_lock_metasync_cannot_read_never_counts_as_free(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    name = lock_name(f"{prefix}order-to-cash")
    response = api.post("/metadata/workflow", json={
        "name": name, "version": 1, "description": "someone's notes", "ownerEmail": "x@example.com",
        "tasks": [{"name": "x", "taskReferenceName": "x", "type": "WAIT"}],
    })  # fmt: skip
    assert response.status_code == 200, response.text
    code, _, err = cli(project, "apply", "--env", "dev", "--auto-approve")
    assert code == 1
    assert (
        "error: dev is locked by an unknown holder (a lock metasync cannot read, version 1)" in err
    )
    assert cli(project, "unlock", "--env", "dev", "v1")[0] == 0
    assert versions(api, name) == []


def test_unlock_shows_a_live_lock_and_removes_it_only_by_its_id(
    project: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    name = lock_name(f"{prefix}order-to-cash")
    with ConductorClient.connect(conductor.url, label="test") as client:
        held, _ = take(client, name, env="dev", command="apply", minutes=30, owner="ci-run-42")
    shown = (
        f"dev is locked by ci-run-42 (apply), since {held.started:%Y-%m-%d %H:%M:%S} UTC, expires "
        f"{held.expires:%Y-%m-%d %H:%M:%S} UTC; lock id {held.token}\n"
    )
    assert cli(project, "unlock", "--env", "dev") == (1, shown, (
        "error: the dev lock is live: without a terminal to confirm, unlock removes it only by "
        "its id\n"
        f"  Check that the run holding it died, then run `metasync unlock --env dev {held.token}`.\n"
    ))  # fmt: skip
    assert cli(project, "unlock", "--env", "dev", "0123abcd") == (1, shown, (
        f"error: 0123abcd is not the dev lock: its id is {held.token}\n"
        "  Nothing was removed. If that run died, run "
        f"`metasync unlock --env dev {held.token}`.\n"
    ))  # fmt: skip
    assert versions(api, name) == [1]  # still held
    monkeypatch.setattr("metasync.cli._interactive", lambda: True)  # a terminal: it asks
    asked = CliRunner().invoke(cli_group, ["--project", str(project), "unlock", "--env", "dev"],
                               input="no\n")  # fmt: skip
    assert (asked.exit_code, asked.stdout) == (1, shown)
    assert asked.stderr == (
        "Remove the live dev lock? The run holding it may still be applying. Only 'yes' removes "
        "it: no\nNot removed.\n"
    )
    assert versions(api, name) == [1]
    monkeypatch.undo()
    assert cli(project, "unlock", "--env", "dev", held.token) == (0, shown + (
        f"removed the lock held by ci-run-42 (apply), since {held.started:%Y-%m-%d %H:%M:%S} UTC, "
        f"expires {held.expires:%Y-%m-%d %H:%M:%S} UTC (lock id {held.token})\n"
    ), "")  # fmt: skip
    assert versions(api, name) == []
    assert cli(project, "unlock", "--env", "dev", held.token) == (0, "dev is not locked.\n", "")


def test_unlock_removes_an_expired_lock_without_its_id(
    project: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    name = lock_name(f"{prefix}order-to-cash")
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    with ConductorClient.connect(conductor.url, label="test") as client:
        held, _ = take(client, name, env="dev", command="apply", minutes=30, owner="ci-run-7",
                       now=long_ago)  # fmt: skip
    code, out, err = cli(project, "unlock", "--env", "dev")
    assert (code, err) == (0, "")
    assert out == (
        f"dev is locked by {held.describe()} (expired); lock id {held.token}\n"
        f"removed the lock held by {held.describe()} (lock id {held.token})\n"
    )
    assert versions(api, name) == []


def test_a_damaged_backup_is_skipped_and_never_taken_for_the_newest(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    apply(project)
    edit(project / "manifests/taskdefs/billing.yaml", "retryCount: 2", "retryCount: 7")
    out = apply(project)
    backup = Path(re.search(r"Before-images saved in (\S+) ", out)[1])  # type: ignore[index]
    assert not list(backup.parent.glob(".*"))  # no temporary file left
    # what a kill -9 in the middle of an in-place write left: a newer, truncated file
    damaged = backup.parent / "29991231T235959000000Z-dead00.json"
    damaged.write_text(backup.read_text()[:100])
    (backup.parent / ".29991231T235959000000Z-beef00.partial").write_text("{")  # never a backup
    # applied by a metasync that kept no history: the newest readable local backup is used
    name = f"metasync_history_{prefix}order-to-cash_dev"
    for version in versions(api, name):
        assert api.delete(f"/metadata/workflow/{name}/{version}").status_code == 200
    code, out, err = cli(project, "rollback", "--env", "dev", "--auto-approve")
    assert code == 0, out + err
    assert f"Rolling dev back to the before-images in {backup}" in out
    assert f"warning: {damaged}: skipped a damaged backup: cannot read the backup: " in err
    assert "1 of 1 change(s) landed." in out
    assert api.get(f"/metadata/taskdefs/{prefix}generate_invoice").json()["retryCount"] == 2


@pytest.mark.parametrize(
    ("folder", "said"),
    [
        ("../../elsewhere", "leads out of the project"),
        ("manifests/backups", "is inside manifests/: its .gitignore would hide new manifests"),
        ("environments", "is inside environments/"),
        (".", "is the project itself"),
    ],
)
def test_backups_stay_out_of_what_git_must_see(
    tmp_path: Path, folder: str, said: str, conductor: conductor_server.Server
) -> None:
    root = prefixed_example(tmp_path / "project", "bk_", conductor.url)
    env = root / "environments" / "dev" / "environment.yaml"
    env.write_text(env.read_text() + f"backups: {{dir: {folder}}}\n")
    code, out, err = cli(root, "apply", "--env", "dev", "--auto-approve")
    assert code == 1
    assert f"error: environments/dev/environment.yaml backups.dir: backups.dir {folder!r} " in err
    assert said in err
    assert "landed" not in out
    assert not (root / "manifests" / ".gitignore").exists()


def test_rollback_deletes_what_the_apply_created_once_the_restored_workflows_no_longer_use_it(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    apply(project)
    (project / "manifests/taskdefs/audit.yaml").write_text(
        "apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {name: " + prefix + "audit}\n"
        "spec: {ownerEmail: ((vars.owner_email)), retryCount: 1}\n"
    )
    edit(project / "manifests/workflows/invoicing.yaml", "    - name: send_invoice\n",
         "    - {name: " + prefix + "audit, taskReferenceName: audit}\n"
         "    - name: send_invoice\n")  # fmt: skip
    out = apply(project)
    assert "2 of 2 change(s) landed." in out, out
    code, out, err = cli(project, "rollback", "--env", "dev", "--auto-approve")
    assert code == 0, out + err
    assert "still used" not in out
    assert "2 of 2 change(s) landed." in out
    assert api.get(f"/metadata/taskdefs/{prefix}audit").status_code == 404
    tasks = api.get(f"/metadata/workflow/{prefix}invoicing").json()["tasks"]
    assert "audit" not in [t["taskReferenceName"] for t in tasks]


def test_a_live_run_renews_its_lock_so_a_short_timeout_never_lets_a_second_run_in(
    project: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    tmp_path: Path,
) -> None:  # fmt: skip
    """lockTimeoutMinutes 0.1 (6 s, renewed every 2 s); the first apply is slowed to well over
    that, and the second starts after the first's lock would have expired: the heartbeat kept it."""
    set_policy(project, "lockTimeoutMinutes: 0.1")
    slow = FaultProxy(conductor.url, shares={"delay": 1.0}, delay=(0.6, 0.6))  # every request
    name = lock_name(f"{prefix}order-to-cash")
    with slow:
        first = first_apply_holding_the_lock(
            project, tmp_path, conductor.url, slow_url=slow.url, api=api, prefix=prefix
        )
        try:
            time.sleep(7.5)  # past the 6 s the lock was taken for
            assert first.poll() is None  # still applying
            code, out, err = cli(project, "apply", "--env", "dev", "--auto-approve")
        finally:
            first_out, first_err = first.communicate(timeout=120)
    assert code == 1, out + err
    assert re.search(rf"error: dev is locked by \S+ pid {first.pid} \(apply\), since ", err), err
    assert first.returncode == 0, first_out + first_err
    assert "17 of 17 change(s) landed." in first_out
    assert api.get(f"/metadata/workflow/{name}").status_code == 404  # released at the end


def test_a_lock_whose_run_was_killed_is_taken_over_by_the_next_run_there_and_no_one_else(
    project: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    tmp_path: Path,
) -> None:  # fmt: skip
    """kill -9 an apply that holds the lock: another checkout still waits for the expiry, but the
    next run in the killed run's own folder takes the lock over at once, and says so."""
    slow = FaultProxy(conductor.url, shares={"delay": 1.0}, delay=(0.4, 0.4),
                      match=lambda method, path: path.endswith("/workflow/validate"))  # fmt: skip
    name = lock_name(f"{prefix}order-to-cash")
    with slow:
        first = first_apply_holding_the_lock(
            project, tmp_path, conductor.url, slow_url=slow.url, api=api, prefix=prefix
        )
        first.kill()
        first.communicate(timeout=60)
        assert api.get(f"/metadata/workflow/{name}").status_code == 200  # left behind
        code, out, err = cli(project, "apply", "--env", "dev", "--auto-approve")
        assert code == 1, out + err
        assert re.search(rf"error: dev is locked by \S+ pid {first.pid} \(apply\)", err), err
        code, out, err = cli(tmp_path / "first", "apply", "--env", "dev", "--auto-approve")
    assert code == 0, out + err
    assert re.search(
        rf"warning: took over the dev lock left by \S+ pid {first.pid} \(apply\), since .*: "
        "that run ended without releasing it", err,
    ), err  # fmt: skip
    assert "change(s) landed." in out
    assert api.get(f"/metadata/workflow/{name}").status_code == 404  # released at the end
    assert not (tmp_path / "first" / ".metasync" / "locks" / "dev.json").exists()


def test_an_object_the_server_cannot_check_waits_and_the_rest_is_applied(
    project: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    """The running executions of one workflow cannot be counted (503 on every attempt): its
    delete waits, with why, and the rest of the apply goes on; the next run deletes it."""
    set_policy(project, "prune: true")
    (project / "manifests/workflows/legacy.yaml").write_text(LEGACY.format(prefix=prefix))
    apply(project)
    (project / "manifests/workflows/legacy.yaml").unlink()
    edit(project / "manifests/taskdefs/billing.yaml", "retryCount: 2", "retryCount: 7")
    running = f"/api/workflow/running/{prefix}legacy_report"
    with FaultProxy(conductor.url, first={f"GET {running}": ["503"] * 5}) as proxy:
        env_file = project / "environments" / "dev" / "environment.yaml"
        env_file.write_text(env_file.read_text().replace(conductor.url, proxy.url))
        code, out, err = cli(project, "apply", "--env", "dev", "--auto-approve")
        env_file.write_text(env_file.read_text().replace(proxy.url, conductor.url))
    assert proxy.seen("GET", running) == ["503"] * 5
    assert code == 1, out + err
    assert re.search(rf"TaskDef {prefix}generate_invoice\s+│ update\s+│ landed", out), out
    assert re.search(rf"WorkflowDef {prefix}legacy_report v1\s+│ delete\s+│ not landed", out), out
    assert "its running executions could not be counted (GET " in out + err
    assert api.get(f"/metadata/taskdefs/{prefix}generate_invoice").json()["retryCount"] == 7
    assert versions(api, f"{prefix}legacy_report") == [1]
    code, out, err = cli(project, "apply", "--env", "dev", "--auto-approve")
    assert code == 0, out + err
    assert versions(api, f"{prefix}legacy_report") == []
