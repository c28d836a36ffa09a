"""environment.yaml ``ignore:``: fields other systems manage stay out of plan and drift, and apply
keeps the server's value of them. Pure matching first, then real servers of both flavours."""

from __future__ import annotations

import copy
import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import run_cli, write_project
from metasync.conductor.live import LiveState
from metasync.errors import ValidationFailed
from metasync.manifests.environment import Ignore, Policy, load_environment
from metasync.model.fieldpath import FieldPath, parse_field_path
from metasync.model.resource import Resource
from metasync.plan.ignore import differing, keep_live, without
from metasync.plan.model import IgnoredField, Plan
from metasync.plan.planner import build_plan
from metasync.render.plan_json import plan_document
from metasync.render.plan_markdown import render_plan_markdown
from metasync.render.plan_text import write_plan_text


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("timeoutSeconds", FieldPath(None, ("timeoutSeconds",))),
        ("inputParameters.http_request.headers", FieldPath(None, ("inputParameters", "http_request", "headers"))),
        ("tasks[ref=charge].inputParameters.uri", FieldPath("charge", ("inputParameters", "uri"))),
        ("tasks[ref=notify_*].optional", FieldPath("notify_*", ("optional",))),
        ("tasks[*].inputParameters.Authorization", FieldPath("*", ("inputParameters", "Authorization"))),
    ],
)  # fmt: skip
def test_field_paths_read_as_plans_show_them(text: str, path: FieldPath) -> None:
    assert parse_field_path(text) == path
    assert str(path) == text


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is not a field path"),
        ("a..b", "keys are joined by single dots"),
        ("tasks[0].name", "name tasks by their reference"),
        ("tasks.x", "name tasks by their reference"),
        ("tasks[ref=charge]", "names a whole task"),
        ("tasks[ref=charge].loopOver", "holds the task's identity or its nested tasks"),
        ("inputParameters.list[2]", "only tasks[ref=NAME] or tasks[*] take brackets"),
        ("name", "says which object it is"),
    ],
)
def test_a_malformed_field_path_is_refused_with_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_field_path(text)


WORKFLOW: dict[str, Any] = {
    "name": "order",
    "version": 1,
    "description": "from git",
    "tasks": [
        {"name": "a", "taskReferenceName": "auth", "type": "HTTP",
         "inputParameters": {"http_request": {"uri": "u", "headers": {"Authorization": "git"}}}},
        {"name": "loop", "taskReferenceName": "loop", "type": "DO_WHILE", "loopOver": [
            {"name": "c", "taskReferenceName": "charge", "type": "HTTP",
             "inputParameters": {"token": "git"}},
        ]},
    ],
}  # fmt: skip


def _live() -> dict[str, Any]:
    live = copy.deepcopy(WORKFLOW)
    live["description"] = "from the UI"
    live["tasks"][0]["inputParameters"]["http_request"]["headers"]["Authorization"] = "vault"
    del live["tasks"][1]["loopOver"][0]["inputParameters"]["token"]
    return live


def test_keep_live_takes_the_servers_value_wherever_the_task_is_nested() -> None:
    paths = [
        parse_field_path("description"),
        parse_field_path("tasks[ref=auth].inputParameters.http_request.headers.Authorization"),
        parse_field_path("tasks[*].inputParameters.token"),
    ]
    kept = keep_live(WORKFLOW, _live(), paths)
    assert kept == _live()  # absent on the server: absent in what is written
    assert WORKFLOW["description"] == "from git"  # the input is left as it was
    assert differing(WORKFLOW, _live(), paths) == [
        "description",
        "tasks[ref=auth].inputParameters.http_request.headers.Authorization",
        "tasks[ref=charge].inputParameters.token",
    ]
    assert without(WORKFLOW, paths) == without(_live(), paths)
    assert without(WORKFLOW, paths)["tasks"][0]["inputParameters"]["http_request"] == {
        "uri": "u", "headers": {},
    }  # fmt: skip


def test_a_task_git_adds_keeps_gits_value() -> None:
    git = copy.deepcopy(WORKFLOW)
    git["tasks"].append({"name": "n", "taskReferenceName": "notify", "type": "HTTP",
                         "inputParameters": {"token": "new"}})  # fmt: skip
    kept = keep_live(git, _live(), [parse_field_path("tasks[*].inputParameters.token")])
    assert kept["tasks"][2]["inputParameters"] == {"token": "new"}
    assert "token" not in kept["tasks"][1]["loopOver"][0]["inputParameters"]


def _taskdef(**fields: Any) -> dict[str, Any]:
    return {"name": "charge", "ownerEmail": "a@example.com", "retryCount": 1} | fields


def test_the_plan_leaves_ignored_fields_out_and_writes_the_servers_value() -> None:
    live = LiveState("http://x", "3.15.0", "3.15",
                     {("TaskDef", "charge", None): _taskdef(description="managed", timeoutSeconds=60)})  # fmt: skip
    rules = [
        Ignore(kind="TaskDef", name="ch*", path="description", reason="the portal writes it"),
        Ignore(path="description"),  # the same field again: told once
    ]
    same = [Resource("TaskDef", "charge", None, _taskdef(description="git", timeoutSeconds=60))]
    plan = build_plan("dev", same, live, ignore=rules)
    assert [c.action for c in plan.changes] == ["noop"]
    assert [(f.kind, f.name, f.path, f.reason) for f in plan.ignored] == [
        ("TaskDef", "charge", "description", "the portal writes it")
    ]
    assert build_plan("dev", same, live).changes[0].action == "update"  # without the rule

    moved = [Resource("TaskDef", "charge", None, _taskdef(description="git", timeoutSeconds=90))]
    (change,) = build_plan("dev", moved, live, ignore=rules).changes
    assert change.action == "update"
    assert [f.path for f in change.fields] == ["timeoutSeconds"]
    assert change.desired is not None
    assert (change.desired["description"], change.desired["timeoutSeconds"]) == ("managed", 90)

    other = [Ignore(kind="WorkflowDef", path="description"), Ignore(name="x*", path="description")]
    assert build_plan("dev", same, live, ignore=other).changes[0].action == "update"

    new = build_plan("dev", same, LiveState("http://x", "3.15.0", "3.15", {}), ignore=rules)
    (created,) = new.changes
    assert (created.action, (created.desired or {})["description"]) == ("create", "git")
    assert new.ignored == ()


def test_under_policy_new_version_an_ignored_field_makes_no_new_version() -> None:
    def workflow(**fields: Any) -> dict[str, Any]:
        return {"name": "order", "version": 1, "ownerEmail": "a@example.com", "tasks": [
            {"name": "w", "taskReferenceName": "w", "type": "WAIT"}]} | fields  # fmt: skip

    live = LiveState("http://x", "3.15.0", "3.15",
                     {("WorkflowDef", "order", 1): workflow(description="managed")})  # fmt: skip
    policy = Policy(versioning="new-version")
    rules = [Ignore(path="description")]
    same = [Resource("WorkflowDef", "order", 1, workflow(description="git"))]
    assert [
        c.action for c in build_plan("dev", same, live, policy=policy, ignore=rules).changes
    ] == ["noop"]
    assert build_plan("dev", same, live, policy=policy).changes[0].version == 2  # without the rule
    moved = [Resource("WorkflowDef", "order", 1, workflow(description="git", timeoutSeconds=9))]
    (change,) = build_plan("dev", moved, live, policy=policy, ignore=rules).changes
    assert (change.action, change.version, change.previous_version) == ("create", 2, 1)
    assert [f.path for f in change.fields] == ["timeoutSeconds"]
    assert (change.desired or {})["description"] == "managed"  # carried to the new version


def test_ignore_entries_are_checked_at_their_line(tmp_path: Path) -> None:
    write_project(tmp_path, {}, environment=(
        "server:\n  url: http://127.0.0.1:1\nignore:\n  - description\n"
        "  - {kind: Workflowdef, name: 'order_*', path: timeoutSeconds}\n"
        "  - kind: WorkflowDef\n    path: tasks.x\n"
    ))  # fmt: skip
    with pytest.raises(ValidationFailed) as failure:
        load_environment(tmp_path, "dev")
    assert str(failure.value) == (
        "error: environments/dev/environment.yaml:5 ignore[1].kind: unknown kind 'Workflowdef'; "
        "did you mean 'WorkflowDef'? (kinds: TaskDef, WorkflowDef, EventHandler, WorkflowSchedule)\n"
        "error: environments/dev/environment.yaml:7 ignore[2].path: 'tasks.x': name tasks by their "
        "reference, tasks[ref=NAME].field, or every task, tasks[*].field"
    )
    result = run_cli("--project", str(tmp_path), "validate")
    assert result.exit_code == 1
    assert "environments/dev/environment.yaml:7 ignore[2].path" in result.output


def test_metasync_yaml_ignores_in_every_environment_before_its_own(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {"metasync.yaml": "name: p\nignore:\n  - description\n"},
        environment="server:\n  url: http://127.0.0.1:1\nignore:\n  - {kind: TaskDef, path: retryCount}\n",
    )
    env = load_environment(tmp_path, "dev")
    assert [(r.kind, r.path) for r in env.ignore] == [
        (None, "description"),
        ("TaskDef", "retryCount"),
    ]
    assert [str(at) for at in env.ignore_at] == [
        "metasync.yaml:3 ignore[0]", "environments/dev/environment.yaml:4 ignore[0]",
    ]  # fmt: skip
    (tmp_path / "metasync.yaml").write_text("name: p\nignore:\n  - tasks[2].x\n")
    with pytest.raises(ValidationFailed) as failure:
        load_environment(tmp_path, "dev")
    assert str(failure.value).startswith(
        "error: metasync.yaml:3 ignore[0].path: 'tasks[2].x': name tasks"
    )


# --- real servers -------------------------------------------------------------------------------

HEADER = "tasks[ref=authorize].inputParameters.http_request.headers"


def _ignoring(project: Path, prefix: str, *extra: str) -> None:
    path = project / "environments" / "dev" / "environment.yaml"
    path.write_text(
        path.read_text()
        + "ignore:\n"
        + f"  - kind: WorkflowDef\n    name: '{prefix}payment_*'\n    path: {HEADER}\n"
        + "    reason: the gateway token is rotated by vault\n"
        + f"  - {{kind: WorkflowDef, name: '{prefix}payment_processing', path: description}}\n"
        + "".join(f"  - {line}\n" for line in extra)
    )


def _cli(project: Path, prefix: str, *args: str) -> tuple[int, str]:
    result = run_cli("--project", str(project), *args, "--select", f"name={prefix}*")
    return result.exit_code, result.output


def _workflow(api: httpx.Client, prefix: str) -> dict[str, Any]:
    answer = api.get(f"/metadata/workflow/{prefix}payment_processing", params={"version": 1})
    found: dict[str, Any] = answer.json()
    return found


@pytest.mark.server
def test_fields_another_system_manages_are_kept_on_the_server(
    applied_example: Path, prefix: str, api: httpx.Client
) -> None:
    project = applied_example
    # another system sets a header and the description on the server
    live = _workflow(api, prefix)
    live["description"] = "managed by the payments portal"
    live["tasks"][0]["inputParameters"]["http_request"]["headers"] = {"Authorization": "Bearer v1"}
    assert api.put("/metadata/workflow", json=[live]).status_code == 200
    assert _cli(project, prefix, "drift", "--env", "dev")[0] == 2  # without ignore: drift

    _ignoring(project, prefix)
    code, text = _cli(project, prefix, "plan", "--env", "dev", "--detailed-exitcode")
    assert code == 0, text
    assert (
        "2 fields ignored by ignore: in metasync.yaml or environment.yaml (the server's values are kept)"
        in text
    )
    code, out = _cli(project, prefix, "drift", "--env", "dev", "-o", "json")
    assert code == 0, out
    (report,) = json.loads(out)["environments"]
    assert (report["inSync"], report["drift"]) == (True, [])
    assert [(f["name"], f["path"], f["reason"]) for f in report["ignored"]] == [
        (f"{prefix}payment_processing", HEADER, "the gateway token is rotated by vault"),
        (f"{prefix}payment_processing", "description", None),
    ]

    # git changes another field: apply writes it and keeps the server's values of the ignored
    manifest = project / "manifests" / "workflows" / "payment_processing.yaml"
    manifest.write_text(
        manifest.read_text().replace("timeoutSeconds: 3600", "timeoutSeconds: 5400", 1)
    )
    code, text = _cli(project, prefix, "plan", "--env", "dev")
    assert "timeoutSeconds: 3600 -> 5400" in text
    assert "description" not in text.replace("2 fields ignored", "")
    assert _cli(project, prefix, "apply", "--env", "dev", "--auto-approve")[0] == 0
    after = _workflow(api, prefix)
    assert after["timeoutSeconds"] == 5400
    assert after["description"] == "managed by the payments portal"
    assert after["tasks"][0]["inputParameters"]["http_request"]["headers"] == {
        "Authorization": "Bearer v1"
    }
    assert _cli(project, prefix, "drift", "--env", "dev")[0] == 0

    # the other system changes its field again: still in sync, and no live edit of metasync's
    after["tasks"][0]["inputParameters"]["http_request"]["headers"] = {"Authorization": "Bearer v2"}
    assert api.put("/metadata/workflow", json=[after]).status_code == 200
    code, out = _cli(project, prefix, "drift", "--env", "dev", "-o", "json")
    assert (code, json.loads(out)["environments"][0]["drift"]) == (0, [])

    # a rollback restores what the apply changed, not what the other system manages
    rolled = run_cli("--project", str(project), "rollback", "--env", "dev", "--auto-approve")
    assert rolled.exit_code == 0, rolled.output
    back = _workflow(api, prefix)
    assert back["timeoutSeconds"] == 3600
    assert back["tasks"][0]["inputParameters"]["http_request"]["headers"] == {
        "Authorization": "Bearer v2"
    }


@pytest.mark.server
def test_an_ignored_field_is_gits_on_create_and_an_idle_entry_is_a_warning(
    applied_example: Path, prefix: str, api: httpx.Client
) -> None:
    project = applied_example
    _ignoring(project, prefix, f"{{name: '{prefix}no_such_*', path: description}}")
    assert api.delete(f"/metadata/workflow/{prefix}payment_processing/1").status_code == 200
    code, text = _cli(project, prefix, "plan", "--env", "dev")
    assert code == 0
    lines = (project / "environments" / "dev" / "environment.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "no_such_" in text)
    assert (
        f"warning: environments/dev/environment.yaml:{line} ignore[2]: ignore: any kind named "
        f"'{prefix}no_such_*' matches no object in git or on the server: it ignores nothing"
    ) in text
    assert _cli(project, prefix, "apply", "--env", "dev", "--auto-approve")[0] == 0
    created = _workflow(api, prefix)
    assert created["description"] == "Authorise and capture a card payment."
    assert "headers" not in created["tasks"][0]["inputParameters"]["http_request"]


def test_every_plan_output_says_how_many_fields_were_ignored() -> None:
    fields = (
        IgnoredField("WorkflowDef", "order", 1, "description", "the portal"),
        IgnoredField("TaskDef", "charge", None, "retryCount"),
    )
    plan = Plan("dev", "http://x", "oss", (), ignored=fields)
    said = "2 fields ignored by ignore: in metasync.yaml or environment.yaml (the server's values are kept)"
    text = StringIO()
    write_plan_text(text, plan, color=False)
    assert said in text.getvalue()
    assert f"<sub>{said}</sub>" in render_plan_markdown(plan)
    assert plan_document(plan)["ignored"] == [
        {"kind": "WorkflowDef", "name": "order", "version": 1, "path": "description", "reason": "the portal"},
        {"kind": "TaskDef", "name": "charge", "version": None, "path": "retryCount", "reason": None},
    ]  # fmt: skip
    quiet = StringIO()
    write_plan_text(quiet, Plan("dev", "http://x", "oss", ()), color=False)
    assert "ignored" not in quiet.getvalue()
