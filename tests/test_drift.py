"""`metasync drift` against real servers of both flavours: each kind of drift, in every output."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import metasync.conductor.client as client_module
from helpers import run_cli

pytestmark = pytest.mark.server


@pytest.fixture
def project(applied_example: Path) -> Path:
    return applied_example


def drift(project: Path, prefix: str, *args: str) -> tuple[int, str, str]:
    result = run_cli("--project", str(project), "drift", "--select", f"name={prefix}*", *args)
    return result.exit_code, result.stdout, result.stderr


def test_an_environment_in_sync_exits_0(project: Path, prefix: str) -> None:
    code, out, err = drift(project, prefix, "--env", "dev")
    assert (code, err) == (0, "")
    assert out.startswith("dev (http://127.0.0.1:")
    assert out.rstrip().endswith("): in sync")
    code, out, _ = drift(project, prefix, "--env", "dev", "-o", "json")
    assert code == 0
    assert json.loads(out)["environments"][0] | {"server": "s"} == {
        "environment": "dev", "server": "s", "inSync": True, "error": None, "ignored": [],
        "drift": [],
    }  # fmt: skip


def test_each_kind_of_drift_is_told_apart_in_every_output(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    # edited live, the way the UI does it: the whole definition back, ownerApp included
    taskdef = api.get(f"/metadata/taskdefs/{prefix}charge_payment").json()
    taskdef["retryCount"] = 9
    assert api.put("/metadata/taskdefs", json=taskdef).status_code == 200
    # edited in git
    path = project / "manifests" / "workflows" / "payment_processing.yaml"
    path.write_text(path.read_text().replace("timeoutSeconds: 3600", "timeoutSeconds: 5400", 1))
    # deleted live
    deleted = api.delete(f"/metadata/workflow/{prefix}customer_notification/1")
    assert deleted.status_code == 200
    # created live
    made = {"name": f"{prefix}made_in_the_ui", "ownerEmail": "ui@example.com", "retryCount": 1}
    assert api.post("/metadata/taskdefs", json=[made]).status_code == 200

    code, out, err = drift(project, prefix, "--env", "dev", "-o", "json")
    assert (code, err) == (2, "")
    (report,) = json.loads(out)["environments"]
    assert report["inSync"] is False
    kinds = {(d["name"].removeprefix(prefix), d["type"]): d for d in report["drift"]}
    assert set(kinds) == {
        ("charge_payment", "live-edited"),
        ("payment_processing", "not-applied"),
        ("customer_notification", "missing-live"),
        ("made_in_the_ui", "unmanaged-live"),
    }
    edited = kinds["charge_payment", "live-edited"]
    assert edited["fields"] == [{"path": "retryCount", "before": 9, "after": 1}]
    assert kinds["payment_processing", "not-applied"]["fields"] == [
        {"path": "timeoutSeconds", "before": 3600, "after": 5400}
    ]
    assert kinds["made_in_the_ui", "unmanaged-live"]["managedByMetasync"] is False

    code, text, _ = drift(project, prefix, "--env", "dev")
    assert code == 2
    assert "1 live-edited, 1 not-applied, 1 missing-live, 1 unmanaged-live" in text
    for line in (
        f"live-edited    TaskDef {prefix}charge_payment  (edited on the server since metasync wrote it)",
        "    ~ retryCount: 9 -> 1",
        f"not-applied    WorkflowDef {prefix}payment_processing v1  (changed in git, not applied yet)",
        f"missing-live   WorkflowDef {prefix}customer_notification v1  (in git, missing on the server)",
        f"unmanaged-live TaskDef {prefix}made_in_the_ui  (on the server, not in git)",
    ):
        assert f"  {line}" in text.splitlines(), line
    assert 'customer_notification"' not in text  # a missing object is not listed field by field

    code, markdown, _ = drift(project, prefix, "--env", "dev", "-o", "markdown")
    assert code == 2
    assert markdown.startswith("### metasync drift: `dev`\n\n**1 live-edited, 1 not-applied,")
    assert (
        f"| `TaskDef {prefix}charge_payment` | live-edited: edited on the server since metasync "
        "wrote it (updated "
    ) in markdown
    assert " UTC, no user recorded, ownerApp metasync/" in markdown
    assert f"| `WorkflowDef {prefix}customer_notification v1` | missing-live:" in markdown
    assert f"| `TaskDef {prefix}made_in_the_ui` | unmanaged-live:" in markdown


def test_a_change_in_git_on_top_of_a_live_edit_is_reported_as_the_live_edit(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    """Applying would overwrite someone's edit: that is what the owners must hear about."""
    taskdef = api.get(f"/metadata/taskdefs/{prefix}charge_payment").json()
    taskdef["retryCount"] = 9
    assert api.put("/metadata/taskdefs", json=taskdef).status_code == 200
    path = project / "manifests" / "taskdefs" / "payments.yaml"
    assert "  retryDelaySeconds: 2\n" in path.read_text()
    path.write_text(
        path.read_text().replace("  retryDelaySeconds: 2\n", "  retryDelaySeconds: 5\n", 1)
    )
    code, out, _ = drift(project, prefix, "--env", "dev", "-o", "json")
    assert code == 2
    (item,) = json.loads(out)["environments"][0]["drift"]
    assert (item["name"], item["type"]) == (f"{prefix}charge_payment", "live-edited")
    # after an apply, metasync's stamp matches again: in sync
    result = run_cli("--project", str(project), "apply", "--env", "dev", "--auto-approve")
    assert result.exit_code == 0, result.stdout
    assert drift(project, prefix, "--env", "dev")[0] == 0


def test_drift_says_when_the_server_object_was_written_and_by_whom(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    """updateTime, updatedBy and ownerApp come from the server; a kind it stamps nothing on says so."""
    before = datetime.now(UTC) - timedelta(seconds=5)
    # a workflow edited the way a UI does: the whole definition back, with who edited it
    workflow = api.get(
        f"/metadata/workflow/{prefix}payment_processing", params={"version": 1}
    ).json()
    mark = workflow["ownerApp"]
    assert mark.startswith(f"metasync/{prefix}order-to-cash@sha256:")
    workflow |= {"description": "edited in the UI", "updatedBy": "alice@example.com"}
    assert api.put("/metadata/workflow", json=[workflow]).status_code == 200
    # a task definition: without authentication, neither server records a user
    taskdef = api.get(f"/metadata/taskdefs/{prefix}charge_payment").json()
    assert api.put("/metadata/taskdefs", json=taskdef | {"retryCount": 9}).status_code == 200
    # an event handler: the server stamps nothing on it
    (handler,) = [h for h in api.get("/event").json() if h["name"] == f"{prefix}on_order_shipped"]
    assert api.put("/event", json=handler | {"active": False}).status_code == 200
    after = datetime.now(UTC) + timedelta(seconds=5)

    code, out, _ = drift(project, prefix, "--env", "dev", "-o", "json")
    assert code == 2
    items = {d["name"].removeprefix(prefix): d for d in json.loads(out)["environments"][0]["drift"]}
    edited = items["payment_processing"]
    assert edited["type"] == "live-edited"
    written = edited["lastWrite"]
    assert written["time"].endswith("Z")
    assert before <= datetime.fromisoformat(written["time"]) <= after
    assert (written["action"], written["by"], written["ownerApp"], written["note"]) == (
        "updated", "alice@example.com", mark, None,
    )  # fmt: skip
    assert items["charge_payment"]["lastWrite"]["by"] is None
    assert before <= datetime.fromisoformat(items["charge_payment"]["lastWrite"]["time"]) <= after
    assert items["on_order_shipped"]["lastWrite"] == {
        "time": None, "action": None, "by": None, "ownerApp": None,
        "note": "the server records no time or user for event handlers",
    }  # fmt: skip

    code, text, _ = drift(project, prefix, "--env", "dev")
    lines = text.splitlines()
    at = lines.index(
        f"  live-edited    WorkflowDef {prefix}payment_processing v1  "
        "(edited on the server since metasync wrote it)"
    )
    assert re.fullmatch(
        r"      updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((just now|1 minute ago)\) by "
        rf"alice@example\.com, ownerApp metasync/{prefix}order-to-cash",
        lines[at + 1],
    ), lines[at + 1]
    assert "      the server records no time or user for event handlers" in lines


def test_all_environments_are_reported_one_by_one(project: Path, prefix: str) -> None:
    code, out, _ = drift(project, prefix, "--all", "-o", "json")
    reports: list[dict[str, Any]] = json.loads(out)["environments"]
    assert [r["environment"] for r in reports] == ["dev", "prod", "qa"]
    assert reports[0]["inSync"] is True
    # qa and prod share this test's server with dev, and their overlays differ from what dev wrote
    assert {d["type"] for r in reports[1:] for d in r["drift"]} == {"not-applied"}
    assert code == 2


def test_an_unreachable_environment_is_an_error_and_the_others_are_still_reported(
    project: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "RETRY_BASE_DELAY_S", 0.001)
    env_file = project / "environments" / "qa" / "environment.yaml"
    env_file.write_text(
        re.sub(r"url: \S+", "url: http://127.0.0.1:9", env_file.read_text(), count=1)
    )
    code, out, err = drift(project, prefix, "--env", "dev", "--env", "qa")
    assert code == 1
    assert out.startswith("dev (http://127.0.0.1:")
    assert "): in sync\n" in out
    assert "qa (http://127.0.0.1:9" in out
    assert "not checked: GET /api/metadata/taskdefs" in out
    assert err.startswith("error: GET /api/metadata/taskdefs")


def test_drift_needs_an_environment_or_all(project: Path) -> None:
    result = run_cli("--project", str(project), "drift")
    assert result.exit_code == 1
    assert "error: drift needs --env ENV (repeatable) or --all" in result.stderr
