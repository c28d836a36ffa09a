"""plan and apply against real servers of both flavours, end to end through the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import conductor_server
import metasync.conductor.client as client_module
from helpers import prefixed_example, run_cli
from metasync import operations as op
from metasync.conductor.normalize import normalize
from metasync.plan import memo as memo_module
from metasync.plan import planner as planner_module
from metasync.project import Project
from metasync.render.apply_result import write_apply_result

pytestmark = pytest.mark.server


@pytest.fixture
def project(tmp_path: Path, prefix: str, conductor: conductor_server.Server) -> Path:
    return prefixed_example(tmp_path / "project", prefix, conductor.url)


@pytest.fixture
def requests_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request metasync sends, as "METHOD /path"."""
    sent: list[str] = []
    real_send = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    return sent


def plan_json(project: Path, *args: str) -> dict[str, Any]:
    result = run_cli("--project", str(project), "plan", "--env", "dev", "-o", "json", *args)
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def mine(document: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    return [c for c in document["changes"] if c["name"].startswith(prefix)]


def apply(project: Path) -> str:
    result = run_cli("--project", str(project), "apply", "--env", "dev", "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def put_workflow(api: httpx.Client, workflow: dict[str, Any]) -> None:
    response = api.put("/metadata/workflow", json=[workflow])
    assert response.status_code == 200, response.text


def test_example_applies_then_plans_as_noop_and_a_second_apply_writes_nothing(
    project: Path, prefix: str, requests_sent: list[str]
) -> None:
    first = plan_json(project)
    assert {c["action"] for c in mine(first, prefix)} == {"create"}
    assert len(mine(first, prefix)) == 17

    output = apply(project)
    assert "17 of 17 change(s) landed." in output
    assert "read-back" not in output

    result = run_cli("--project", str(project), "plan", "--env", "dev", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout
    assert "0 to create, 0 to update, 0 to delete, 17 unchanged" in result.stdout

    requests_sent.clear()
    output = apply(project)
    assert "Nothing to apply: the server matches git." in output
    assert requests_sent, "the second apply read the server"
    writes = [r for r in requests_sent if not r.startswith("GET ")]
    # nothing but its own lock: taken (POST) and released (DELETE)
    assert writes == [
        "POST /api/metadata/workflow",
        f"DELETE /api/metadata/workflow/metasync_lock_{prefix}order-to-cash/1",
    ]


def test_a_live_edit_inside_a_loop_inside_a_fork_branch_is_one_field_and_apply_heals_it(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    apply(project)
    name = f"{prefix}order_fulfillment"
    live = api.get(f"/metadata/workflow/{name}", params={"version": 1}).json()
    pick = live["tasks"][1]["forkTasks"][0][0]["loopOver"][0]
    assert pick["taskReferenceName"] == "pick"
    pick["optional"] = True
    put_workflow(api, live)

    document = plan_json(project)
    changed = [c for c in mine(document, prefix) if c["action"] != "noop"]
    assert [(c["kind"], c["name"], c["version"], c["action"]) for c in changed] == [
        ("WorkflowDef", name, 1, "update")
    ]
    assert changed[0]["fields"] == [
        {"path": "tasks[ref=pick].optional", "before": True, "after": False}
    ]
    assert changed[0]["liveFingerprint"] != changed[0]["desiredFingerprint"]

    apply(project)
    healed = api.get(f"/metadata/workflow/{name}", params={"version": 1}).json()
    assert healed["tasks"][1]["forkTasks"][0][0]["loopOver"][0]["optional"] is False
    assert all(c["action"] == "noop" for c in mine(plan_json(project), prefix))


def test_a_task_inserted_in_the_middle_is_one_added_task(
    project: Path, prefix: str, flavour: str
) -> None:
    apply(project)
    manifest = project / "manifests" / "workflows" / "invoicing.yaml"
    text = manifest.read_text()
    inserted = (
        "    - name: audit_invoice\n"
        "      taskReferenceName: audit_invoice\n"
        "      type: INLINE\n"
        "      inputParameters:\n"
        "        evaluatorType: javascript\n"
        '        expression: "true"\n\n'
    )
    manifest.write_text(
        text.replace("    - name: send_invoice\n", inserted + "    - name: send_invoice\n")
    )

    changed = [c for c in mine(plan_json(project), prefix) if c["action"] != "noop"]
    assert len(changed) == 1
    assert changed[0]["name"] == f"{prefix}invoicing"
    assert changed[0]["fields"] == [
        {
            "path": "tasks[ref=audit_invoice]",
            "before": None,
            "after": {
                "name": "audit_invoice",
                "taskReferenceName": "audit_invoice",
                "type": "INLINE",
                "inputParameters": {"evaluatorType": "javascript", "expression": "true"},
                "startDelay": 0,
                "optional": False,
                "asyncComplete": False,
                # the defaults of the flavour: conductor-oss has one more
                **({"permissive": False} if flavour == "oss" else {}),
            },
        }
    ]


def test_a_task_definition_edited_live_plans_as_that_one_field(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    apply(project)
    name = f"{prefix}charge_payment"
    live = api.get(f"/metadata/taskdefs/{name}").json()
    live["retryCount"] = 9
    assert api.put("/metadata/taskdefs", json=live).status_code == 200

    changed = [c for c in mine(plan_json(project), prefix) if c["action"] != "noop"]
    assert [(c["name"], c["fields"]) for c in changed] == [
        (name, [{"path": "retryCount", "before": 9, "after": 1}])
    ]
    created = live["createTime"]
    apply(project)
    healed = api.get(f"/metadata/taskdefs/{name}").json()
    assert healed["retryCount"] == 1
    assert healed["createTime"] == created  # PUT echoes the live audit fields


def test_explicit_defaults_and_omitted_ones_plan_identically(project: Path, prefix: str) -> None:
    apply(project)
    taskdef = project / "manifests" / "taskdefs" / "billing.yaml"
    taskdef.write_text(
        taskdef.read_text().replace(
            "  retryCount: 2\n",
            "  retryCount: 2\n  rateLimitPerFrequency: 0\n  backoffScaleFactor: 1\n  inputKeys: []\n"
            "  timeoutPolicy: TIME_OUT_WF\n  inputTemplate: {}\n",
        )
    )
    workflow = project / "manifests" / "workflows" / "invoicing.yaml"
    workflow.write_text(
        workflow.read_text()
        .replace(
            "  version: 1\n",
            "  version: 1\n  schemaVersion: 2\n  restartable: true\n  variables: {}\n",
        )
        .replace(
            "      taskReferenceName: invoice\n",
            "      taskReferenceName: invoice\n      optional: false\n      type: SIMPLE\n      startDelay: 0\n",
        )
    )
    assert all(c["action"] == "noop" for c in mine(plan_json(project), prefix))


def test_a_value_the_server_would_reject_fails_at_plan_with_its_message(
    project: Path, prefix: str, requests_sent: list[str]
) -> None:
    manifest = project / "manifests" / "workflows" / "invoicing.yaml"
    # a javascript SWITCH expression that does not parse: both flavours refuse it at registration
    manifest.write_text(
        manifest.read_text().replace(
            "      evaluatorType: value-param\n      expression: status\n",
            '      evaluatorType: javascript\n      expression: "$.status =="\n',
        )
    )
    result = run_cli("--project", str(project), "plan", "--env", "dev")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.startswith(
        f"error: manifests/workflows/invoicing.yaml:39 tasks[ref=payment_status]: the server "
        f"refuses WorkflowDef {prefix}invoicing v1: "
    )
    assert "Expression is not well formatted: " in result.stderr  # the server's words
    assert "(POST /api/metadata/workflow/validate -> 400)" in result.stderr
    # nothing was written: the only POSTs are the server's dry-run validation
    assert [r for r in requests_sent if r.startswith(("PUT", "DELETE"))] == []
    assert {r for r in requests_sent if r.startswith("POST")} == {
        "POST /api/metadata/workflow/validate"
    }


def test_select_limits_both_sides(project: Path, prefix: str) -> None:
    document = plan_json(
        project, "--select", f"kind=TaskDef,name={prefix}*", "--select", "label.tier=critical"
    )
    titles = sorted((c["kind"], c["name"]) for c in document["changes"])
    assert ("WorkflowDef", f"{prefix}order_to_cash") in titles  # label.tier=critical
    assert ("WorkflowDef", f"{prefix}invoicing") not in titles
    assert sum(k == "TaskDef" for k, _ in titles) == 10
    assert document["unmanaged"] == []  # other tests' objects are outside the selection


def test_apply_without_a_terminal_needs_auto_approve(project: Path) -> None:
    result = run_cli("--project", str(project), "apply", "--env", "dev")
    assert result.exit_code == 1
    assert "error: apply needs a confirmation and there is no terminal to ask" in result.stderr


def test_an_unreachable_server_is_a_user_error(
    tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "RETRY_BASE_DELAY_S", 0.001)
    project = prefixed_example(tmp_path / "p", prefix, "http://127.0.0.1:9")
    result = run_cli("--project", str(project), "plan", "--env", "dev")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: GET /api/metadata/taskdefs: cannot reach the dev server (http://127.0.0.1:9)"
    )
    assert "Is the server running, and is server.url in environment.yaml right?" in result.stderr


def test_a_broken_manifest_is_said_and_not_an_unreachable_server(tmp_path: Path,
                                                                  prefix: str) -> None:  # fmt: skip
    """The server is read while the manifests are rendered; a manifest's problem is still what a
    plan says (the read, still trying the server, is left behind)."""
    project = prefixed_example(tmp_path / "p", prefix, "http://127.0.0.1:9")
    (project / "manifests" / "broken.yaml").write_text("kind: [TaskDef\n")
    result = run_cli("--project", str(project), "plan", "--env", "dev")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: manifests/broken.yaml:"), result.stderr
    assert "cannot reach" not in result.stderr


def test_apply_asks_and_only_yes_applies(
    project: Path, prefix: str, monkeypatch: pytest.MonkeyPatch, requests_sent: list[str]
) -> None:
    import metasync.cli

    monkeypatch.setattr(metasync.cli, "_interactive", lambda: True)
    runner = CliRunner()
    refused = runner.invoke(
        metasync.cli.cli,
        ["--project", str(project), "apply", "--env", "dev", "--select", f"name={prefix}pick_item"],
        input="y\n",
    )
    assert refused.exit_code == 1
    assert "Apply these 1 change(s) to dev? Only 'yes' applies:" in refused.stderr
    assert "Not applied." in refused.stderr
    # nothing written but the apply lock, taken and released
    assert [r for r in requests_sent if r.startswith(("PUT", "DELETE"))] == [
        f"DELETE /api/metadata/workflow/metasync_lock_{prefix}order-to-cash/1"
    ]
    assert {r for r in requests_sent if r.startswith("POST")} <= {
        "POST /api/metadata/workflow/validate",
        "POST /api/metadata/workflow",
    }

    accepted = runner.invoke(
        metasync.cli.cli,
        ["--project", str(project), "apply", "--env", "dev", "--select", f"name={prefix}pick_item"],
        input="yes\n",
    )
    assert accepted.exit_code == 0, accepted.stderr
    assert "1 of 1 change(s) landed." in accepted.stdout


def test_what_did_not_land_is_reported_and_apply_exits_1(
    tmp_path: Path, prefix: str, api: httpx.Client, conductor: conductor_server.Server
) -> None:
    """A workflow created by someone else between plan and apply: 409, not landed, the rest lands."""
    project_dir = prefixed_example(tmp_path / "p", prefix, conductor.url)
    project = Project(project_dir)
    planned = op.plan.plan(project, "dev")
    name = f"{prefix}invoicing"
    raced = next(c.desired for c in planned.plan.changes if c.name == name)
    assert raced is not None
    assert (
        api.post("/metadata/workflow", json=dict(raced) | {"description": "theirs"}).status_code
        == 200
    )

    applied = op.apply.apply(project, planned)
    assert not applied.ok
    outcomes = {o.change.name: o for o in applied.outcomes}
    assert outcomes[name].status == "not landed"
    assert outcomes[name].problems[0].message == (
        f"POST /api/metadata/workflow -> 409: Workflow with {name}.1 already exists!"
    )
    assert sum(o.status == "landed" for o in applied.outcomes) == 16
    # the other workflow was not overwritten
    live = api.get(f"/metadata/workflow/{name}", params={"version": 1}).json()
    assert live["description"] == "theirs"

    out = io.StringIO()
    write_apply_result(out, applied.outcomes, applied.read_back, color=False)
    text = out.getvalue()
    assert f"WorkflowDef {name} v1" in text
    assert "not landed" in text
    assert "16 of 17 change(s) landed." in text
    # and the next plan shows exactly that one difference
    after = op.plan.plan(Project(project_dir), "dev").plan
    assert [(c.name, [f.path for f in c.fields]) for c in after.pending] == [
        (name, ["description"])
    ]


def test_a_stale_saved_plan_applies_nothing_and_with_partial_applies_the_rest(
    project: Path, prefix: str, api: httpx.Client, tmp_path: Path
) -> None:
    apply(project)
    edit_taskdef = project / "manifests" / "taskdefs" / "orders.yaml"
    edit_taskdef.write_text(
        edit_taskdef.read_text().replace("  retryCount: 2\n", "  retryCount: 7\n", 1)
    )
    release = project / "manifests" / "taskdefs" / "orders.yaml"
    release.write_text(release.read_text().replace("  retryCount: 5\n", "  retryCount: 6\n", 1))
    saved = tmp_path / "plan.json"
    result = run_cli("--project", str(project), "plan", "--env", "dev", "--out", str(saved))
    assert result.exit_code == 0, result.stderr
    document = json.loads(saved.read_text())
    assert document["kind"] == "metasync-plan"
    assert document["commit"] is None  # not a git repository here
    changed = sorted(c["name"] for c in document["changes"] if c["action"] == "update")
    assert changed == [f"{prefix}release_inventory", f"{prefix}validate_order"]

    # someone edits validate_order on the server after the review
    live = api.get(f"/metadata/taskdefs/{prefix}validate_order").json()
    live["description"] = "edited in the UI"
    assert api.put("/metadata/taskdefs", json=live).status_code == 200

    # by default a stale plan applies nothing, and names each object that moved once
    result = run_cli("--project", str(project), "apply", str(saved))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: TaskDef {prefix}validate_order is stale: it changed on the server since the plan "
        "was made\n"
        "error: the saved plan is stale in 1 object(s): nothing was applied\n"
        f"  Plan again (metasync plan --env dev --out {saved}) and review. Or pass --partial to "
        "apply the reviewed changes that still hold.\n"
    )
    assert api.get(f"/metadata/taskdefs/{prefix}release_inventory").json()["retryCount"] == 5

    result = run_cli("--project", str(project), "apply", str(saved), "--partial")
    assert result.exit_code == 1
    assert (
        f"error: TaskDef {prefix}validate_order is not applied: it changed on the server since the "
        f"plan was made\n  Plan again (metasync plan --env dev --out {saved}) and review.\n"
    ) in result.stderr
    assert f"TaskDef {prefix}release_inventory" in result.stdout
    assert "1 of 1 change(s) landed." in result.stdout
    survived = api.get(f"/metadata/taskdefs/{prefix}validate_order").json()
    assert survived["description"] == "edited in the UI"
    assert survived["retryCount"] == 2
    assert api.get(f"/metadata/taskdefs/{prefix}release_inventory").json()["retryCount"] == 6

    # an untouched saved plan applies as a whole
    result = run_cli("--project", str(project), "plan", "--env", "dev", "--out", str(saved))
    assert result.exit_code == 0
    result = run_cli("--project", str(project), "apply", str(saved))
    assert result.exit_code == 0, result.stderr
    assert "1 of 1 change(s) landed." in result.stdout
    assert api.get(f"/metadata/taskdefs/{prefix}validate_order").json()["retryCount"] == 7

    # the same plan again: what it reviewed is on the server already, which is no error
    result = run_cli("--project", str(project), "apply", str(saved))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Nothing to apply: the server matches git.\n"
    assert result.stderr == ""


def test_apply_of_a_saved_plan_does_not_have_the_server_check_again_what_it_checked(
    project: Path, prefix: str, tmp_path: Path, requests_sent: list[str]
) -> None:
    """The plan's server checks passed on these very objects (the fingerprints say so) on this
    server: apply PLAN writes them without asking again (2,000 new workflows: 10 s of a 32 s
    apply). One the plan held back, unchecked, is checked now."""
    validate = "POST /api/metadata/workflow/validate"
    saved = tmp_path / "plan.json"
    result = run_cli("--project", str(project), "plan", "--env", "dev", "--out", str(saved))
    assert result.exit_code == 0, result.stderr
    document = json.loads(saved.read_text())
    workflows = [c for c in mine(document, prefix) if c["kind"] == "WorkflowDef"]
    assert len(workflows) > 1
    assert requests_sent.count(validate) == len(workflows)
    # as if the server could not check the first one when the plan was made
    held = workflows[0]
    held["blocked"] = "the server could not check it (503): not applied this run"
    saved.write_text(json.dumps(document))
    requests_sent.clear()
    result = run_cli("--project", str(project), "apply", str(saved))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert requests_sent.count(validate) == 1
    assert [c["action"] for c in mine(plan_json(project), prefix)] == ["noop"] * len(
        mine(document, prefix)
    )


def test_what_a_plan_found_of_new_objects_is_not_worked_out_again_by_apply_plan_nor_after(
    project: Path, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan's fingerprint of each new object is kept (the memo): apply PLAN's plan and its
    read-back compare without normalizing git's side again, nor for showing (nobody reads their
    fields), the server's side of what was written is normalized once, at the read-back, and
    kept: the next plan normalizes nothing. (2,000 new workflows: 3 s of a 16 s apply PLAN.)"""
    saved = tmp_path / "plan.json"
    result = run_cli("--project", str(project), "plan", "--env", "dev", "--out", str(saved))
    assert result.exit_code == 0, result.stderr
    written = sorted(c["name"] for c in mine(json.loads(saved.read_text()), prefix))
    assert len(written) > 10
    seen: list[str] = []
    real = normalize

    def counted(kind: str, spec: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(spec.get("name")))
        return real(kind, spec, *args, **kwargs)

    monkeypatch.setattr(planner_module, "normalize", counted)
    monkeypatch.setattr(memo_module, "normalize", counted)
    result = run_cli("--project", str(project), "apply", str(saved))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert sorted(name for name in seen if name.startswith(prefix)) == written
    seen.clear()
    assert all(c["action"] == "noop" for c in mine(plan_json(project), prefix))
    assert [name for name in seen if name.startswith(prefix)] == []


def test_a_saved_plan_is_refused_when_the_manifests_moved(project: Path, tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    assert (
        run_cli("--project", str(project), "plan", "--env", "dev", "--out", str(saved)).exit_code
        == 0
    )
    billing = project / "manifests" / "taskdefs" / "billing.yaml"
    billing.write_text(billing.read_text().replace("  retryCount: 2\n", "  retryCount: 9\n", 1))
    # dev's desired state is not the one planned: refused as a whole before the server is touched
    result = run_cli("--project", str(project), "apply", str(saved))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {saved}: the plan for dev was made outside git, but this checkout (outside git) "
        "has another desired state for dev: what was reviewed is not what would land, so nothing "
        f"was applied\n  Plan again on this commit and review that plan (metasync plan --env dev "
        f"--out {saved}).\n"
    )
    # --partial applies the reviewed changes that still hold, object by object
    result = run_cli("--project", str(project), "apply", str(saved), "--partial")
    assert result.exit_code == 1
    assert (
        "generate_invoice is not applied: its manifests changed since the plan was made"
        in result.stderr
    )
    assert "16 of 16 change(s) landed." in result.stdout
    assert "cannot read the saved plan" in run_cli("apply", str(billing)).stderr
    other = tmp_path / "other.json"
    other.write_text('{"formatVersion": 1, "environment": "dev"}')
    assert (
        f"error: {other} is not a metasync saved plan (formatVersion 1)"
        in run_cli("apply", str(other)).stderr
    )


def test_what_metasync_writes_carries_its_mark(
    project: Path, prefix: str, api: httpx.Client
) -> None:
    apply(project)
    mark = f"metasync/{prefix}order-to-cash"  # metasync.yaml's name
    document = plan_json(project)
    written = {c["name"]: c["desiredFingerprint"] for c in document["changes"]}
    # the mark, and the fingerprint of what was written (drift tells a live edit by it)
    assert api.get(f"/metadata/taskdefs/{prefix}pick_item").json()["ownerApp"] == (
        f"{mark}@{written[f'{prefix}pick_item']}"
    )
    live = api.get(f"/metadata/workflow/{prefix}invoicing", params={"version": 1}).json()
    assert live["ownerApp"] == f"{mark}@{written[f'{prefix}invoicing']}"
    assert written[f"{prefix}invoicing"].startswith("sha256:")
    # a definition made by hand carries no mark; one that left git keeps metasync's
    hand_made = {"name": f"{prefix}hand_made", "ownerEmail": "ui@example.com"}
    assert api.post("/metadata/taskdefs", json=[hand_made]).status_code == 200
    (project / "manifests" / "workflows" / "support.yaml").unlink()
    for tested in ("customer_notification", "order_compensation"):  # and their tests
        (project / "manifests" / "tests" / f"{tested}.yaml").unlink()
    document = plan_json(project)
    mine_unmanaged = {
        u["name"]: u["managedByMetasync"]
        for u in document["unmanaged"]
        if u["name"].startswith(prefix)
    }
    assert mine_unmanaged == {
        f"{prefix}hand_made": False,
        f"{prefix}customer_notification": True,
        f"{prefix}order_compensation": True,
    }
    # the mark is not a difference: everything still in git plans as noop
    assert {c["action"] for c in mine(document, prefix)} == {"noop"}
