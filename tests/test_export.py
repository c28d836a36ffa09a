"""`metasync export` against real servers of both flavours: manifests that plan as a no-op, byte-stable,
and several servers factored into one base and an overlay per environment."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
import yaml

import conductor_server
from helpers import prefixed_example, run_cli, secret_project

pytestmark = pytest.mark.server


def cli(*args: str, expect: int = 0) -> str:
    result = run_cli(*args)
    assert result.exit_code == expect, result.stdout + result.stderr
    return result.stdout + result.stderr


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }  # fmt: skip


def hand_made(api: httpx.Client, prefix: str) -> None:
    """Definitions made through the REST API, the way a UI user would have made them."""
    taskdef = {"name": f"{prefix}hand_task", "ownerEmail": "ui@example.com", "retryCount": 5,
               "retryLogic": "EXPONENTIAL_BACKOFF", "responseTimeoutSeconds": 120,
               "inputKeys": ["a", "b"], "description": "made: by hand # not a comment"}  # fmt: skip
    assert api.post("/metadata/taskdefs", json=[taskdef]).status_code == 200
    for version in (1, 2):
        workflow = {
            "name": f"{prefix}hand_flow", "version": version, "ownerEmail": "ui@example.com",
            "schemaVersion": 2, "timeoutSeconds": 60 * version,
            "tasks": [
                {"name": f"{prefix}hand_task", "taskReferenceName": "first", "type": "SIMPLE",
                 "inputParameters": {"x": "${workflow.input.x}", "note": "a: b", "n": None}},
                {"name": "route", "taskReferenceName": "route", "type": "SWITCH",
                 "evaluatorType": "javascript",
                 "expression": "$.x == 'a' ? 'left' : 'right'",
                 "inputParameters": {"x": "${first.output.x}"},
                 "decisionCases": {"left": [
                     {"name": "calc", "taskReferenceName": "calc", "type": "INLINE",
                      "inputParameters": {"evaluatorType": "graaljs",
                                          "expression": "(function () {\n  return 1;\n})();"}}]},
                 "defaultCase": [{"name": "stop", "taskReferenceName": "stop", "type": "TERMINATE",
                                  "inputParameters": {"terminationStatus": "COMPLETED"}}]},
            ],
        }  # fmt: skip
        response = api.post("/metadata/workflow", json=workflow)
        assert response.status_code == 200, response.text
    handler = {"name": f"{prefix}hand_handler", "event": "conductor:x:done", "active": True,
               "condition": "$.status == 'ok'",
               "actions": [{"action": "start_workflow",
                            "start_workflow": {"name": f"{prefix}hand_flow", "version": 2}}]}  # fmt: skip
    assert api.post("/event", json=handler).status_code == 200


def test_a_server_exports_to_manifests_that_plan_as_a_noop_and_stay_byte_identical(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    project = prefixed_example(tmp_path / "project", prefix, conductor.url)
    cli("--project", str(project), "apply", "--env", "dev", "--auto-approve")
    hand_made(api, prefix)
    out = tmp_path / "exported"
    mine = ("--select", f"name={prefix}*")

    said = cli("--project", str(project), "export", "--env", "dev", "--out", str(out), *mine)
    assert f"exported dev into {out}: 20 manifest file(s)" in said
    flows = list(
        yaml.safe_load_all(
            (out / "manifests" / "workflows" / f"{prefix}hand_flow.yaml").read_text()
        )
    )
    assert [d["spec"]["version"] for d in flows] == [1, 2]  # a workflow's versions together
    text = "\n".join(p.read_text() for p in (out / "manifests").rglob("*.yaml"))
    for managed in ("createTime", "ownerApp", "updateTime", "schemaVersion", "asyncComplete"):
        assert managed not in text  # server-written fields and defaults are left out
    assert 'x: "${workflow.input.x}"' in text  # Conductor expressions quoted
    assert "retryLogic: EXPONENTIAL_BACKOFF" in text
    assert "retryLogic: FIXED" not in text

    plan = cli("--project", str(out), "plan", "--env", "dev", "--detailed-exitcode", *mine)
    assert "Plan: 0 to create, 0 to update, 0 to delete, 21 unchanged." in plan

    before = digest(out)
    cli("--project", str(project), "export", "--env", "dev", "--out", str(out), *mine)
    assert digest(out) == before


def test_two_servers_export_into_one_base_and_an_overlay_each(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    conductor_b: conductor_server.Server,
) -> None:  # fmt: skip
    project = prefixed_example(tmp_path / "project", prefix, conductor.url)
    qa_file = project / "environments" / "qa" / "environment.yaml"
    qa_file.write_text(qa_file.read_text().replace(conductor.url, conductor_b.url))
    for env in ("dev", "qa"):
        cli("--project", str(project), "apply", "--env", env, "--auto-approve")
    with httpx.Client(base_url=f"{conductor_b.url}/api") as qa:  # something only qa has
        made = {"name": f"{prefix}qa_only", "ownerEmail": "ui@example.com"}
        assert qa.post("/metadata/taskdefs", json=[made]).status_code == 200
    out = tmp_path / "factored"
    mine = ("--select", f"name={prefix}*")

    said = cli("--project", str(project), "export", "--env", "dev", "--env", "qa",
               "--out", str(out), *mine)  # fmt: skip
    assert f"warning: TaskDef {prefix}qa_only is on qa only: not exported" in said
    overlays = {env: sorted(p.name for p in (out / "environments" / env / "overlays").glob("*.yaml"))
                for env in ("dev", "qa")}  # fmt: skip
    assert overlays["dev"]
    assert overlays["qa"]
    # the base holds what both share: the payments endpoint differs, so it is in the overlays
    base = yaml.safe_load(
        (out / "manifests" / "workflows" / f"{prefix}payment_processing.yaml").read_text()
    )
    authorize = next(t for t in base["spec"]["tasks"] if t["taskReferenceName"] == "authorize")
    assert "uri" not in authorize["inputParameters"]["http_request"]
    assert authorize["inputParameters"]["http_request"]["method"] == "POST"
    dev_overlay = yaml.safe_load(
        (
            out / "environments" / "dev" / "overlays" / f"{prefix}payment_processing.v1.yaml"
        ).read_text()
    )
    entry = next(e for e in dev_overlay["patch"]["tasks"] if e["taskReferenceName"] == "authorize")
    assert entry == {"taskReferenceName": "authorize", "inputParameters": {"http_request": {
        "uri": "https://payments.dev.example.internal/v1/authorizations"}}}  # fmt: skip
    # qa's own task (added by its overlay in the source project) is placed by reference
    qa_overlay = (
        out / "environments" / "qa" / "overlays" / f"{prefix}order_to_cash.v1.yaml"
    ).read_text()
    assert "$after: validate" in qa_overlay
    assert "jsonPatch" not in "".join(
        p.read_text() for p in (out / "environments").rglob("overlays/*.yaml")
    )

    for env in ("dev", "qa"):  # each environment renders to what its server holds
        plan = cli("--project", str(out), "plan", "--env", env, "--detailed-exitcode", *mine)
        assert "0 to create, 0 to update, 0 to delete, 17 unchanged." in plan
    before = digest(out)
    cli(
        "--project", str(project), "export", "--env", "dev", "--env", "qa", "--out", str(out), *mine
    )
    assert digest(out) == before

    # --vars: values that differ only by environment become variables; the overlays shrink
    with_vars = tmp_path / "with-vars"
    cli("--project", str(project), "export", "--env", "dev", "--env", "qa", "--vars",
        "--out", str(with_vars), *mine)  # fmt: skip
    dev_vars = yaml.safe_load((with_vars / "environments/dev/environment.yaml").read_text())["vars"]
    qa_vars = yaml.safe_load((with_vars / "environments/qa/environment.yaml").read_text())["vars"]
    uri = f"{prefix}payment_processing_authorize_uri".lower()
    assert dev_vars[uri] == "https://payments.dev.example.internal/v1/authorizations"
    assert qa_vars[uri] == "https://payments.qa.example.internal/v1/authorizations"
    base_text = (
        with_vars / "manifests" / "workflows" / f"{prefix}payment_processing.yaml"
    ).read_text()
    assert f'uri: "((vars.{uri}))"' in base_text
    size = sum(len(p.read_text()) for p in with_vars.rglob("overlays/*.yaml"))
    assert size < sum(len(p.read_text()) for p in out.rglob("overlays/*.yaml"))
    for env in ("dev", "qa"):
        plan = cli("--project", str(with_vars), "plan", "--env", env, "--detailed-exitcode", *mine)
        assert "0 to create, 0 to update, 0 to delete, 17 unchanged." in plan


def test_export_needs_a_writable_folder_and_vars_need_two_environments(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    project = prefixed_example(tmp_path / "project", prefix, conductor.url)
    said = cli("--project", str(project), "export", "--env", "dev", "--vars", "--out",
               str(tmp_path / "x"), expect=1)  # fmt: skip
    assert "error: --vars needs several environments" in said
    blocker = tmp_path / "file"
    blocker.write_text("")
    said = cli("--project", str(project), "export", "--env", "dev", "--out", str(blocker / "sub"),
               "--select", f"name={prefix}*", expect=1)  # fmt: skip
    assert "error: " in said
    assert "cannot write the export" in said


@pytest.mark.parametrize("then", ["current", "rotated", "unset"])
def test_a_secret_the_server_holds_is_exported_as_its_placeholder(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    monkeypatch: pytest.MonkeyPatch, then: str,
) -> None:  # fmt: skip
    """The server holds the secret applied; at export time the variable holds it still, holds a
    new value (rotated), or is unset: the manifests' placeholder is written each time."""
    project = secret_project(tmp_path / "p", prefix, conductor.url, "METASYNC_TEST_EXPORT_TOKEN")
    secret = "tok-export-0123456789"
    monkeypatch.setenv("METASYNC_TEST_EXPORT_TOKEN", secret)
    cli("--project", str(project), "apply", "--env", "dev", "--auto-approve")
    if then == "rotated":
        monkeypatch.setenv("METASYNC_TEST_EXPORT_TOKEN", "tok-after-rotation-0815")
    elif then == "unset":
        monkeypatch.delenv("METASYNC_TEST_EXPORT_TOKEN")
    out = tmp_path / "out"
    mine = ("--select", f"name={prefix}*")
    said = cli("--project", str(project), "export", "--env", "dev", "--out", str(out), *mine)
    exported = (out / "manifests" / "workflows" / f"{prefix}billing.yaml").read_text()
    assert 'Authorization: "Bearer ((secrets.api_token))"' in exported
    assert 'X-Api-Key: "((secrets.api_token))"' in exported
    assert secret not in exported + said
    if then == "current":
        plan = cli("--project", str(out), "plan", "--env", "dev", "--detailed-exitcode", *mine)
        assert "0 to create, 0 to update, 0 to delete, 1 unchanged." in plan


def test_a_credential_no_environment_declares_is_exported_with_a_warning(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    workflow = {
        "name": f"{prefix}clear", "version": 1, "ownerEmail": "ui@example.com",
        "tasks": [{"name": "call", "taskReferenceName": "call", "type": "HTTP", "inputParameters": {
            "http_request": {"uri": "https://x.example", "method": "GET", "headers": {
                "Authorization": "Bearer abcdefghijklmnopqrstu", "X-Api-Key": "k3y-in-clear-99",
                "X-Trace": "${workflow.input.trace}"}}}}],
    }  # fmt: skip
    assert api.post("/metadata/workflow", json=workflow).status_code == 200
    project = prefixed_example(tmp_path / "project", prefix, conductor.url)
    said = cli("--project", str(project), "export", "--env", "dev", "--out",
               str(tmp_path / "out"), "--select", f"name={prefix}clear")  # fmt: skip
    at = "tasks[0].inputParameters.http_request.headers"
    for header in ("Authorization", "X-Api-Key"):
        assert (
            f"warning: manifests/workflows/{prefix}clear.yaml {at}.{header}: WorkflowDef "
            f"{prefix}clear v1: the value at {at}.{header} looks like a credential, and is "
            "written in clear"
        ) in said
    assert "X-Trace" not in said


def test_a_password_in_the_server_url_is_exported_as_a_variable_to_set(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The project's environment.yaml keeps a password in server.url (and the same one in a
    webhook): the exported copy names a variable instead, and works once that variable is set."""
    password = "pw-in-the-url-4711"
    url = conductor.url.replace("http://", f"http://admin:{password}@")
    project = prefixed_example(tmp_path / "project", prefix, url)
    config = project / "environments" / "dev" / "environment.yaml"
    config.write_text(f"{config.read_text()}notify:\n  - http://hook:{password}@127.0.0.1:9/x\n")
    out, mine = tmp_path / "out", ("--select", f"name={prefix}*")
    cli("--project", str(project), "apply", "--env", "dev", "--auto-approve", *mine)
    said = cli("--project", str(project), "export", "--env", "dev", "--out", str(out), *mine)
    exported = (out / "environments" / "dev" / "environment.yaml").read_text()
    assert password not in exported + said
    assert "http://admin:((env.METASYNC_DEV_PASSWORD))@127.0.0.1" in exported
    assert "http://hook:((env.METASYNC_DEV_PASSWORD))@127.0.0.1:9/x" in exported
    assert said.count("is exported as ((env.METASYNC_DEV_PASSWORD))") == 1
    assert "warning: environments/dev/environment.yaml:4: a password written in a URL" in said
    monkeypatch.setenv("METASYNC_DEV_PASSWORD", password)
    plan = cli("--project", str(out), "plan", "--env", "dev", "--detailed-exitcode", *mine)
    assert "0 to create, 0 to update, 0 to delete" in plan
    again = cli("--project", str(out), "export", "--env", "dev", "--out", str(out), *mine)
    assert "a password written in a URL" not in again
