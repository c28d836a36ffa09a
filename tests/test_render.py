"""`metasync render` and `validate` on the example project."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from helpers import run_cli, write_project

ROOT = Path(__file__).resolve().parent.parent


def test_render_json_has_the_contract_shape() -> None:
    result = run_cli("--project", str(ROOT), "render", "--env", "dev", "-o", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["formatVersion", "environment", "resources"]
    assert document["formatVersion"] == 1
    assert document["environment"] == "dev"
    kinds = [r["kind"] for r in document["resources"]]
    assert kinds == sorted(kinds, key=["TaskDef", "WorkflowDef", "EventHandler"].index)
    for resource in document["resources"]:
        assert list(resource) == ["kind", "name", "version", "spec"]
        assert resource["spec"]["name"] == resource["name"]
        if resource["kind"] == "WorkflowDef":
            assert isinstance(resource["version"], int)
        else:
            assert resource["version"] is None
    assert "((vars." not in result.stdout


def test_render_resolves_each_environments_variables_with_their_types(example_repo: Path) -> None:
    specs = {}
    for env in ("dev", "prod"):
        result = run_cli("--project", str(example_repo), "render", "--env", env, "-o", "json")
        resources = json.loads(result.stdout)["resources"]
        specs[env] = {r["name"]: r["spec"] for r in resources}
    assert specs["dev"]["charge_payment"]["retryCount"] == 1
    assert specs["prod"]["charge_payment"]["retryCount"] == 5
    payment = specs["prod"]["payment_processing"]["tasks"][0]["inputParameters"]["http_request"]
    assert payment["uri"] == "https://payments.prod.example.internal/v1/authorizations"
    # Conductor expressions are left alone
    assert payment["body"]["orderId"] == "${workflow.input.orderId}"


def test_render_yaml_round_trips_into_the_same_resources(
    tmp_path: Path, example_repo: Path
) -> None:
    result = run_cli("--project", str(example_repo), "render", "--env", "qa")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# metasync render --env qa\n---\n")
    documents = list(yaml.safe_load_all(result.stdout))
    assert {d["apiVersion"] for d in documents} == {"metasync/v1"}
    # the rendered manifests are a valid project of their own, and render to the same JSON
    write_project(tmp_path, {"manifests/all.yaml": result.stdout})
    again = run_cli("--project", str(tmp_path), "render", "--env", "dev", "-o", "json")
    original = run_cli("--project", str(example_repo), "render", "--env", "qa", "-o", "json")
    assert json.loads(again.stdout)["resources"] == json.loads(original.stdout)["resources"]


def test_validate_the_example_project_for_every_environment(example_repo: Path) -> None:
    result = run_cli("--project", str(example_repo), "validate")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == "valid: 17 resources for dev, prod, qa (0 warning(s))\n"


def test_the_example_pins_every_stage_after_dev() -> None:
    """qa and prod run a commit (moved by promotion), never the working tree."""
    for env, source in (("qa", "dev"), ("prod", "qa")):
        config = yaml.safe_load((ROOT / "environments" / env / "environment.yaml").read_text())
        assert config["promotion"]["from"] == source
        assert re.fullmatch(r"[0-9a-f]{40}", config["promotion"]["ref"])


def test_a_stage_promoted_from_another_must_be_pinned(tmp_path: Path) -> None:
    taskdef = (
        "apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {name: t}\n"
        "spec: {ownerEmail: team@example.com}\n"
    )
    write_project(tmp_path, {"manifests/t.yaml": taskdef})
    qa = tmp_path / "environments" / "qa" / "environment.yaml"
    qa.parent.mkdir(parents=True)
    qa.write_text("server: {url: http://127.0.0.1:1}\npromotion:\n  from: dev\n")
    for command in (["validate"], ["render", "--env", "qa"], ["plan", "--env", "qa"]):
        result = run_cli("--project", str(tmp_path), *command)
        assert result.exit_code == 1, command
        assert (
            "error: environments/qa/environment.yaml promotion.ref: qa is promoted from dev "
            "(promotion.from), but promotion.ref is not set: it would run the working tree"
        ) in result.stderr, command
        assert "`metasync promote dev qa` opens that change" in result.stderr


def test_render_refuses_an_invalid_project(tmp_path: Path) -> None:
    write_project(tmp_path, {"manifests/t.yaml": "apiVersion: metasync/v1\nkind: Task\n"})
    result = run_cli("--project", str(tmp_path), "render", "--env", "dev")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "manifests/t.yaml:2 kind: unknown kind 'Task'; did you mean 'TaskDef'?" in result.stderr


def test_warnings_do_not_fail_validate(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: WorkflowDef
                metadata: {name: wf}
                spec:
                  ownerEmail: ((vars.owner_email))
                  tasks: [{name: undefined_worker, taskReferenceName: w}]
                """
        },
    )
    result = run_cli("--project", str(tmp_path), "validate")
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: manifests/wf.yaml:6 tasks[ref=w].name: no TaskDef 'undefined_worker' in this "
        "project: Conductor will run the task with default settings (3 retries, 60 s apart, "
        "1 h response timeout) [undefined-taskdef]\n  Define the task under manifests/, or check the name.\n"
    )
    assert result.stdout == "valid: 1 resources for dev (1 warning(s))\n"
