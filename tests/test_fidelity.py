"""Fidelity on both server flavours: what teams really write settles after one apply, export of
what a server holds validates and plans as a no-op, and in-place updates keep the audit fields.

The definitions reproduce patterns found in public definitions (conductor-oss test and e2e
resources, the Java and Python SDK examples), written anew here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import conductor_server
import metasync.project as project_module
from conftest import start_server
from helpers import prefixed_example, run_cli, write_project

pytestmark = pytest.mark.server


def cli(*args: str, expect: int = 0) -> str:
    result = run_cli(*args)
    assert result.exit_code == expect, result.stdout + result.stderr
    return result.stdout + result.stderr


def manifest(kind: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "metasync/v1", "kind": kind, "metadata": {"name": spec["name"]},
         "spec": spec}, sort_keys=False,
    )  # fmt: skip


def project(root: Path, url: str, specs: list[tuple[str, dict[str, Any]]]) -> Path:
    environment = f"server:\n  url: {url}\nvars:\n  owner_email: team@example.com\n"
    files = {
        f"manifests/{i:02d}.yaml": manifest(kind, spec) for i, (kind, spec) in enumerate(specs)
    }
    return write_project(root, files, environment=environment)


def plan_json(root: Path) -> dict[str, Any]:
    result = run_cli("--project", str(root), "plan", "--env", "dev", "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def pending(root: Path) -> list[tuple[str, str, list[str]]]:
    return [
        (c["action"], c["name"], [f["path"] for f in c["fields"]])
        for c in plan_json(root)["changes"]
        if c["action"] != "noop"
    ]


def task(ref: str, type_: str = "SIMPLE", **fields: Any) -> dict[str, Any]:
    return {"name": ref, "taskReferenceName": ref, "type": type_, **fields}


def nested_inline(prefix: str) -> dict[str, Any]:
    """A workflow whose SUB_WORKFLOW carries its definition inline, which does the same again."""
    grandchild = {"name": f"{prefix}grandchild", "tasks": [task("leaf", "WAIT")]}
    child = {
        "name": f"{prefix}child", "version": 2, "description": "inline, one level down",
        "tasks": [task("inner", "SUB_WORKFLOW", subWorkflowParam={
            "name": f"{prefix}grandchild", "workflowDefinition": grandchild})],
    }  # fmt: skip
    return {
        "name": f"{prefix}inline_parent", "version": 1, "ownerEmail": "team@example.com",
        "tasks": [task("outer", "SUB_WORKFLOW", subWorkflowParam={
            "name": f"{prefix}child", "workflowDefinition": child})],
    }  # fmt: skip


def test_an_inline_sub_workflow_two_levels_deep_settles_after_one_apply(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    root = project(tmp_path, conductor.url, [("WorkflowDef", nested_inline(prefix))])
    said = cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert "1 of 1 change(s) landed" in said, said
    assert "landed but" not in said
    assert pending(root) == []
    drift = run_cli("--project", str(root), "drift", "--env", "dev", "--select", f"name={prefix}*")
    assert drift.exit_code == 0, drift.stdout + drift.stderr


def corpus(prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """Patterns of public definitions that a server of either flavour accepts."""
    owner = "team@example.com"
    flow = {
        "name": f"{prefix}patterns", "version": 1, "ownerEmail": owner,
        "failureWorkflow": "$workflow.input.on_failure",  # read from the input at run time
        "onStateChange": {},  # a field no server model has: dropped by the server
        "tasks": [
            task("fetch_list", inputParameters={"n": "${workflow.input.n}"}, callbackFromWorker=True),
            {**task("each", "DO_WHILE"), "loopCondition": "",  # '' is accepted; items drive it
             "inputParameters": {"items": "${fetch_list.output.items}"},
             "loopOver": [
                 {"name": "unnamed_step", "type": "SIMPLE"},  # no reference: not checked in a loop
                 task("fan", "FORK_JOIN_DYNAMIC"),  # no params: not checked in a loop either
                 task("use_iteration", inputParameters={"i": "${each['iteration']}"}),
             ]},
            task("timed", taskDefinition={"retryCount": 1, "timeoutSeconds": 60,
                                          "responseTimeoutSeconds": 30}),  # inline, no name
            task("ask", "AGENT", inputParameters={"prompt": "${workflow.input.q}"}),
        ],
    }  # fmt: skip
    return [("TaskDef", {"name": "fetch_list", "ownerEmail": owner}), ("WorkflowDef", flow)]


def test_public_patterns_validate_apply_and_settle(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    specs = corpus(prefix)
    specs[0][1]["name"] = f"{prefix}fetch_list"
    specs[1][1]["tasks"][0]["name"] = f"{prefix}fetch_list"
    root = project(tmp_path, conductor.url, specs)
    validated = run_cli("--project", str(root), "validate")
    assert validated.exit_code == 0, validated.stderr
    for warned in ("onStateChange", "callbackFromWorker", "loopOver"):
        assert warned in validated.stderr
    said = cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert "2 of 2 change(s) landed" in said, said
    assert "landed but" not in said
    assert pending(root) == []


def test_an_in_place_update_keeps_the_live_create_time(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    flow = {"name": f"{prefix}audited", "version": 1, "ownerEmail": "team@example.com",
            "tasks": [task("a", "WAIT")]}  # fmt: skip
    taskdef: dict[str, Any] = {"name": f"{prefix}audited_task", "ownerEmail": "team@example.com"}
    root = project(tmp_path, conductor.url, [("TaskDef", taskdef), ("WorkflowDef", flow)])
    cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    before = api.get(f"/metadata/workflow/{prefix}audited").json()
    before_td = api.get(f"/metadata/taskdefs/{prefix}audited_task").json()
    assert before["createTime"] > 0
    assert before_td["createTime"] > 0
    flow["description"] = "changed"
    taskdef["retryCount"] = 7
    project(tmp_path, conductor.url, [("TaskDef", taskdef), ("WorkflowDef", flow)])
    said = cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert "2 of 2 change(s) landed" in said, said
    after = api.get(f"/metadata/workflow/{prefix}audited").json()
    after_td = api.get(f"/metadata/taskdefs/{prefix}audited_task").json()
    assert after["description"] == "changed"
    assert after_td["retryCount"] == 7
    assert after["createTime"] == before["createTime"]
    assert after_td["createTime"] == before_td["createTime"]


def newer_features(prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """What conductor-oss 3.32 adds: schemas, rate limits, caches, AI tasks, handler actions."""
    owner = "team@example.com"
    flow = {
        "name": f"{prefix}modern", "version": 1, "ownerEmail": owner,
        "inputSchema": {"name": "order_input", "type": "JSON"},
        "outputSchema": {"name": "order_output", "version": 2},
        "rateLimitConfig": {"rateLimitKey": "${workflow.input.customer}"},
        "cacheConfig": {"key": "${workflow.input.order}", "ttlInSecond": 60},
        "maskedFields": ["card"], "metadata": {"team": "orders"},
        "tasks": [
            task("chat", "LLM_CHAT_COMPLETE", inputParameters={"llmProvider": "openai",
                 "model": "gpt-4o", "messages": [{"role": "user", "message": "${workflow.input.q}"}]},
                 cacheConfig={"key": "${workflow.input.q}"}),
            task("tools", "LIST_MCP_TOOLS", inputParameters={"mcpServer": "http://mcp.example"}),
            task("call", "CALL_MCP_TOOL", inputParameters={"mcpServer": "http://mcp.example",
                                                           "method": "lookup"}),
        ],
    }  # fmt: skip
    taskdef = {"name": f"{prefix}modern_task", "ownerEmail": owner,
               "inputSchema": {"name": "modern_task_input"}, "totalTimeoutSeconds": 600,
               "timeoutSeconds": 300, "responseTimeoutSeconds": 60}  # fmt: skip
    handler = {"name": f"{prefix}modern_handler", "event": "conductor:x:done", "active": True,
               "actions": [{"action": "terminate_workflow",
                            "terminate_workflow": {"workflowId": "${workflowId}"}},
                           {"action": "update_workflow_variables",
                            "update_workflow_variables": {"workflowId": "${workflowId}",
                                                          "variables": {"done": True}}}]}  # fmt: skip
    return [("TaskDef", taskdef), ("WorkflowDef", flow), ("EventHandler", handler)]


def digest(root: Path) -> dict[str, str]:
    """The exported files (not metasync's cache under .metasync/, which the plan writes)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".metasync" not in p.relative_to(root).parts
    }  # fmt: skip


def test_newer_features_export_validate_and_plan_as_a_noop(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    flavour: str,
) -> None:  # fmt: skip
    """Made through the REST API as a UI user would; on 3.15 what it cannot hold is refused
    offline (handler actions) or left out with a warning (the oss-only fields)."""
    specs = newer_features(prefix)
    root = project(tmp_path / "git", conductor.url, specs)
    if flavour == "3.15":
        refused = run_cli("--project", str(root), "plan", "--env", "dev")
        assert refused.exit_code == 1
        assert "action terminate_workflow is conductor-oss's, which Conductor 3.15 refuses" in (
            refused.stderr
        )
        specs = specs[:2]
        root = project(tmp_path / "git-315", conductor.url, specs)
    said = cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert f"{len(specs)} of {len(specs)} change(s) landed" in said, said
    assert "landed but" not in said
    assert pending(root) == []

    out = tmp_path / "exported"
    mine = ("--select", f"name={prefix}*")
    cli("--project", str(root), "export", "--env", "dev", "--out", str(out), *mine)
    first = digest(out)
    validated = run_cli("--project", str(out), "validate")
    assert validated.exit_code == 0, validated.stderr
    assert "error" not in validated.stderr
    assert pending(out) == []
    cli("--project", str(root), "export", "--env", "dev", "--out", str(out), *mine)
    assert digest(out) == first
    exported = (out / "manifests" / "workflows" / f"{prefix}modern.yaml").read_text()
    assert "createTime" not in exported
    assert "updateTime" not in exported
    if flavour == "oss":
        assert "inputSchema:\n    name: order_input\n    type: JSON\n" in exported
        assert "concurrentExecLimit" not in exported  # the server's default, left out


@pytest.fixture(scope="module")
def strict_names(tmp_path_factory: pytest.TempPathFactory) -> Iterator[conductor_server.Server]:
    """conductor-oss with its optional workflow name validation on (letters, digits, _, -, space)."""
    yield from start_server(
        "pytest-strict-names", tmp_path_factory, "oss",
        "--conductor.app.workflow.name-validation.enabled=true",
    )  # fmt: skip


def test_apply_lock_and_prune_work_with_strict_workflow_names(
    tmp_path: Path, strict_names: conductor_server.Server
) -> None:
    api = httpx.Client(base_url=f"{strict_names.url}/api", timeout=30)
    refused = api.post("/metadata/workflow", json={
        "name": "a.b", "version": 1, "tasks": [task("a", "WAIT")]})  # fmt: skip
    assert refused.status_code == 400  # the setting is on
    root = prefixed_example(tmp_path / "project", "strict_", strict_names.url)
    (root / "metasync.yaml").write_text("name: shop.orders\n")  # a '.' the server would refuse
    said = cli("--project", str(root), "apply", "--env", "qa", "--auto-approve")
    assert "not landed" not in said, said
    names = {w["name"] for w in api.get("/metadata/workflow").json()}
    assert "metasync_ledger_shop_orders" in names  # handlers were written: the ledger too
    assert not any(n.startswith("metasync_lock") for n in names)  # taken and released
    # prune (qa prunes): the event handler leaves git, so it is deleted and the ledger rewritten
    (root / "manifests" / "event-handlers" / "on_order_shipped.yaml").unlink()
    said = cli("--project", str(root), "apply", "--env", "qa", "--auto-approve")
    assert "1 of 1 change(s) landed" in said, said
    assert "strict_on_order_shipped" not in {h["name"] for h in api.get("/event").json()}
    ledger = api.get("/metadata/workflow/metasync_ledger_shop_orders").json()
    assert json.loads(ledger["description"]) == {"eventHandlers": {}}
    unlocked = cli("--project", str(root), "unlock", "--env", "qa")
    assert unlocked == "qa is not locked.\n"


def test_a_dynamic_inline_definition_is_placed_or_applied_by_flavour(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, flavour: str
) -> None:
    """conductor-oss takes ``workflowDefinition: "${...}"``; 3.15 cannot even read it (500). With
    the environment declared oss by mistake, 3.15's 500 is still placed at the manifest's line."""
    flow = {
        "name": f"{prefix}dynamic", "version": 1, "ownerEmail": "team@example.com",
        "tasks": [task("planner", "WAIT"), task("run_plan", "SUB_WORKFLOW", subWorkflowParam={
            "name": f"{prefix}planned", "workflowDefinition": "${planner.output.workflow_def}"})],
    }  # fmt: skip
    root = project(tmp_path, conductor.url, [("WorkflowDef", flow)])
    environment = root / "environments" / "dev" / "environment.yaml"
    environment.write_text(environment.read_text().replace("\nvars:", "\n  flavour: oss\nvars:"))
    if flavour == "oss":
        said = cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
        assert "1 of 1 change(s) landed" in said, said
        assert pending(root) == []
        return
    result = run_cli("--project", str(root), "plan", "--env", "dev")
    assert result.exit_code == 1, result.stdout
    assert result.stderr.startswith(
        "error: manifests/00.yaml:18 tasks[ref=run_plan].subWorkflowParam.workflowDefinition: "
        f"the server refuses WorkflowDef {prefix}dynamic v1: JSON parse error: Cannot construct "
    ), result.stderr
    assert "(POST /api/metadata/workflow/validate -> 500)" in result.stderr
    assert "Traceback" not in result.output


def test_the_flavour_is_learned_from_the_server_and_the_checks_follow_it(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, flavour: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    flow = {"name": f"{prefix}team:flow", "version": 1, "ownerEmail": "nobody",
            "tasks": [task("a", "WAIT")]}  # fmt: skip
    root = project(tmp_path, conductor.url, [("WorkflowDef", flow)])
    before = run_cli("--project", str(root), "validate")
    assert before.exit_code == 0, before.stderr  # not known yet: 3.15's rules only warn
    assert "(Conductor 3.15 refuses it)" in before.stderr
    checked: list[object] = []
    real = project_module.check_resources  # type: ignore[attr-defined]

    def counted(resources: Any, checked_for: Any) -> Any:
        checked.append(checked_for)
        return real(resources, checked_for)

    monkeypatch.setattr(project_module, "check_resources", counted)
    planned = run_cli("--project", str(root), "--no-cache", "plan", "--env", "dev")
    # the plan waits for the server's version and checks once, for its flavour (not first for
    # none, then again: a cold CI run would load every manifest twice)
    assert checked == [flavour], planned.stderr
    seen = json.loads((root / ".metasync" / "servers.json").read_text())
    assert seen["dev"]["version"] == ("3.32.3" if flavour == "oss" else "3.15.0")
    assert seen["dev"]["url"] == conductor.url
    after = run_cli("--project", str(root), "validate")
    if flavour == "oss":
        assert planned.exit_code == 0, planned.stderr
        assert after.exit_code == 0, after.stderr
        assert "refuses" not in after.stderr
    else:
        assert planned.exit_code == 1
        assert "ownerEmail 'nobody' is not an e-mail address, which Conductor 3.15 refuses" in (
            planned.stderr
        )
        assert after.exit_code == 1
        assert "contains ':', which Conductor 3.15 refuses" in after.stderr
