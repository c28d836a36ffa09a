"""WorkflowSchedule, the kind added through the kind interface alone (model/kinds/schedule.py),
against real servers: conductor-oss 3.32.3 has schedules, Conductor 3.15.0 has none."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

import conductor_server
from flavours import on
from helpers import run_cli, write_project

pytestmark = pytest.mark.server

SCHEDULES = "/scheduler/schedules"


def environment(url: str, extra: str = "") -> str:
    return f"server:\n  url: {url}\npolicy:\n  prune: true\n{extra}"


def waiting_workflow(name: str) -> str:
    return f"""\
        apiVersion: metasync/v1
        kind: WorkflowDef
        metadata: {{name: {name}}}
        spec:
          version: 1
          ownerEmail: team@example.com
          tasks:
            - {{name: wait, taskReferenceName: wait, type: WAIT}}
        """


def files(prefix: str) -> dict[str, str | bytes]:
    """A workflow, the schedule that starts it, and a workflow that stays (so that git never
    names nothing when the first two leave)."""
    return {
        "manifests/workflows/report.yaml": waiting_workflow(f"{prefix}report"),
        "manifests/schedules/nightly.yaml": f"""\
            apiVersion: metasync/v1
            kind: WorkflowSchedule
            metadata: {{name: {prefix}nightly}}
            spec:
              description: every night at two
              cronExpression: "0 0 2 * * ?"
              zoneId: Europe/Berlin
              startWorkflowRequest:
                name: {prefix}report
                version: 1
                input: {{day: yesterday}}
            """,
        "manifests/workflows/keep.yaml": waiting_workflow(f"{prefix}keep"),
    }


def cli(project: Path, *args: str, expect: int | None = 0) -> str:
    result = run_cli("--project", str(project), *args)
    said = result.stdout + result.stderr
    if expect is not None:
        assert result.exit_code == expect, said
    return said


def mine(prefix: str) -> tuple[str, str]:
    return ("--select", f"name={prefix}*")


def live_schedule(api: httpx.Client, name: str) -> dict[str, object] | None:
    response = api.get(f"{SCHEDULES}/{name}")
    return response.json() if response.status_code == 200 else None


@on("oss")
def test_a_schedule_lives_in_git_like_any_definition(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    api: httpx.Client,
) -> None:  # fmt: skip
    """Applies, then plans as a no-op; a live edit of its cron plans as one field and is drift;
    a pause on the server is live state (no diff, kept by apply); export writes it back."""
    project = write_project(tmp_path / "p", files(prefix), environment(conductor.url))
    name = f"{prefix}nightly"
    said = cli(project, "apply", "--env", "dev", "--auto-approve", *mine(prefix))
    assert f"WorkflowSchedule {name}" in said
    assert "3 of 3 change(s) landed." in said
    live = live_schedule(api, name)
    assert live is not None
    assert live["cronExpression"] == "0 0 2 * * ?"
    assert live["startWorkflowRequest"] == {
        "name": f"{prefix}report", "version": 1, "input": {"day": "yesterday"},
        "taskToDomain": {}, "priority": 0,
    }  # fmt: skip
    plan = cli(project, "plan", "--env", "dev", "--detailed-exitcode", *mine(prefix))
    assert "0 to create, 0 to update, 0 to delete, 3 unchanged." in plan

    # edited and paused on the server
    edited = {**live, "cronExpression": "0 30 3 * * ?"}
    assert api.post(SCHEDULES, json=edited).status_code == 200
    assert api.put(f"{SCHEDULES}/{name}/pause", params={"reason": "ops"}).status_code == 200
    plan = cli(project, "plan", "--env", "dev", *mine(prefix))
    assert f"~ WorkflowSchedule {name}  (update, 1 field(s))" in plan
    assert '~ cronExpression: "0 30 3 * * ?" -> "0 0 2 * * ?"' in plan
    assert "paused" not in plan
    drift = cli(project, "drift", "--env", "dev", "-o", "json", *mine(prefix), expect=2)
    found = json.loads(drift)["environments"][0]["drift"]
    assert [(d["kind"], d["name"], d["type"]) for d in found] == [
        ("WorkflowSchedule", name, "live-edited")
    ]
    # the scheduler stamps its own updatedTime: drift tells when the schedule was edited
    assert (found[0]["lastWrite"]["action"], found[0]["lastWrite"]["time"][:2]) == ("updated", "20")
    said = cli(project, "apply", "--env", "dev", "--auto-approve", *mine(prefix))
    assert "1 of 1 change(s) landed." in said
    live = live_schedule(api, name)
    assert live is not None
    assert live["cronExpression"] == "0 0 2 * * ?"
    assert (live["paused"], live.get("pausedReason")) == (True, "ops")  # the operators' pause

    # export writes it as a manifest that plans as a no-op (live state left out)
    out = tmp_path / "exported"
    cli(project, "export", "--env", "dev", "--out", str(out), *mine(prefix))
    exported = yaml.safe_load((out / "manifests" / "schedules" / f"{name}.yaml").read_text())
    assert exported == {
        "apiVersion": "metasync/v1", "kind": "WorkflowSchedule", "metadata": {"name": name},
        "spec": {
            "description": "every night at two", "cronExpression": "0 0 2 * * ?",
            "zoneId": "Europe/Berlin",
            "startWorkflowRequest": {"name": f"{prefix}report", "version": 1,
                                     "input": {"day": "yesterday"}},
        },
    }  # fmt: skip
    plan = cli(out, "plan", "--env", "dev", "--detailed-exitcode", *mine(prefix))
    assert "0 to create, 0 to update, 0 to delete, 3 unchanged." in plan


@on("oss")
def test_git_decides_the_paused_state_when_the_policy_says_so(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    api: httpx.Client,
) -> None:  # fmt: skip
    project = write_project(
        tmp_path / "p", files(prefix), environment(conductor.url, "  manageLiveState: true\n")
    )
    name = f"{prefix}nightly"
    cli(project, "apply", "--env", "dev", "--auto-approve", *mine(prefix))
    assert api.put(f"{SCHEDULES}/{name}/pause").status_code == 200
    plan = cli(project, "plan", "--env", "dev", *mine(prefix))
    assert "~ paused: true -> false" in plan
    cli(project, "apply", "--env", "dev", "--auto-approve", *mine(prefix))
    live = live_schedule(api, name)
    assert live is not None
    assert live["paused"] is False


@on("oss")
def test_prune_keeps_the_workflow_a_schedule_starts_and_deletes_the_schedule_first(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    api: httpx.Client,
) -> None:  # fmt: skip
    project = write_project(tmp_path / "p", files(prefix), environment(conductor.url))
    cli(project, "apply", "--env", "dev", "--auto-approve", *mine(prefix))
    hand_made = {"name": f"{prefix}by_hand", "cronExpression": "0 0 5 * * ?",
                 "startWorkflowRequest": {"name": f"{prefix}keep"}}  # fmt: skip
    assert api.post(SCHEDULES, json=hand_made).status_code == 200

    # the workflow leaves git, its schedule stays: the delete is blocked, naming the schedule
    (project / "manifests/workflows/report.yaml").unlink()
    said = cli(project, "apply", "--env", "dev", "--auto-approve", *mine(prefix), expect=1)
    assert (
        f"still used by WorkflowSchedule {prefix}nightly (in git): not deleted without --force"
        in said
    )
    assert api.get(f"/metadata/workflow/{prefix}report").status_code == 200

    # both leave git: the schedule goes first, then the workflow; the hand-made one stays
    (project / "manifests/schedules/nightly.yaml").unlink()
    plan = cli(project, "plan", "--env", "dev", *mine(prefix))
    assert f"- WorkflowSchedule {prefix}nightly  (delete)" in plan
    # listed among the schedules on the server only (names wrap between names, kind by kind)
    left_alone = re.search(r"^  WorkflowSchedule \(\d+\): (.*(?:\n    .*)*)", plan, re.M)
    assert left_alone is not None, plan
    assert f"{prefix}by_hand" in re.split(r"[,\s]+", left_alone.group(1))
    said = cli(project, "apply", "--env", "dev", "--auto-approve", *mine(prefix))
    assert said.index("applying delete WorkflowSchedule") < said.index(
        "applying delete WorkflowDef"
    )
    assert "2 of 2 change(s) landed." in said
    assert live_schedule(api, f"{prefix}nightly") is None
    assert api.get(f"/metadata/workflow/{prefix}report").status_code == 404
    assert live_schedule(api, f"{prefix}by_hand") is not None  # not metasync's: never pruned
    assert api.delete(f"{SCHEDULES}/{prefix}by_hand").status_code == 200


@on("3.15")
def test_a_server_without_schedules_is_a_clear_error_at_the_manifest(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    api: httpx.Client,
) -> None:  # fmt: skip
    """Conductor 3.15 has no scheduler: known offline (the flavour declared or learned), or
    found at plan when the server answers 404 for the list (declared as conductor-oss here)."""
    at = "manifests/schedules/nightly.yaml:4"
    project = write_project(tmp_path / "p", files(prefix), environment(conductor.url))
    said = cli(project, "plan", "--env", "dev", *mine(prefix), expect=1)
    assert (
        f"error: {at} name: Conductor 3.15 has no WorkflowSchedule (only conductor-oss has)" in said
    )
    assert "Traceback" not in said
    said = cli(project, "validate", "--env", "dev", expect=1)  # learned: offline now
    assert f"error: {at} name: Conductor 3.15 has no WorkflowSchedule" in said

    declared = write_project(
        tmp_path / "q", files(prefix), environment(conductor.url).replace(
            "server:\n", "server:\n  flavour: oss\n")
    )  # fmt: skip
    said = cli(declared, "apply", "--env", "dev", "--auto-approve", *mine(prefix), expect=1)
    assert (
        f"error: {at} name: the dev server ({conductor.url}) has no WorkflowSchedule endpoint "
        "(GET /api/scheduler/schedules -> 404)"
    ) in said
    assert api.get(f"/metadata/workflow/{prefix}report").status_code == 404  # nothing written
    # without schedules in git, the same server plans as ever
    (declared / "manifests/schedules/nightly.yaml").unlink()
    said = cli(declared, "plan", "--env", "dev", *mine(prefix))
    assert "2 to create" in said


ZONES = ["Europe/Berlin", "UTC", "Z", "UTC+01:00", "GMT", "+02:00", "Mars/Base", "Europe/Nowhere"]


@on("oss")
def test_validate_refuses_exactly_the_schedules_the_server_refuses(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    """Each zone (and a cron the server stores though it never runs) sent to the real server and
    checked offline: an error exactly where the server answers an error; the rest are warnings."""
    for i, zone in enumerate(ZONES):
        name = f"{prefix}zone{i}"
        body = {"name": name, "cronExpression": "not a cron", "zoneId": zone,
                "startWorkflowRequest": {"name": f"{prefix}elsewhere"}}  # fmt: skip
        accepted = api.post(SCHEDULES, json=body).status_code == 200
        manifest = {"apiVersion": "metasync/v1", "kind": "WorkflowSchedule",
                    "metadata": {"name": name}, "spec": {k: v for k, v in body.items() if k != "name"}}  # fmt: skip
        project = write_project(
            tmp_path / f"p{i}", {"manifests/s.yaml": yaml.safe_dump(manifest)},
            environment(conductor.url).replace("server:\n", "server:\n  flavour: oss\n"),
        )  # fmt: skip
        result = run_cli("--project", str(project), "validate")
        said = result.stdout + result.stderr
        assert (result.exit_code == 0) == accepted, (zone, accepted, said)
        assert "cronExpression 'not a cron' has 3 field(s), not 6" in said
        assert f"startWorkflowRequest names '{prefix}elsewhere'" in said
        if accepted:
            assert api.delete(f"{SCHEDULES}/{name}").status_code == 200
        else:
            assert f"zoneId {zone!r} is not a time zone the server knows" in said
