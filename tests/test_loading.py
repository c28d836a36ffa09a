"""YAML with positions, variables, environments: the pieces under `validate` and `render`."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli, write_project
from metasync.errors import Location, ValidationFailed
from metasync.manifests.environment import load_environment
from metasync.manifests.variables import Unresolved, manifest_lookup, substitute
from metasync.manifests.yamlio import parse_documents
from metasync.project import Project


def test_documents_keep_lines_and_skip_empty_ones() -> None:
    docs = parse_documents("a: 1\n---\n---\nb:\n  - x\n  - {y: 2}\n", "f.yaml")
    assert [(d.data, d.locator.index) for d in docs] == [({"a": 1}, 0), ({"b": ["x", {"y": 2}]}, 2)]
    assert docs[1].locator.locate(("b", 1, "y"), "b[1].y") == Location("f.yaml", 6, "b[1].y")
    assert docs[1].locator.locate(("b", 7)).line == 4  # runs out: the deepest existing part
    assert docs[1].locator.within("b").locate((1,)).line == 6


def test_dates_stay_strings() -> None:
    (doc,) = parse_documents("until: 2030-01-01\n", "f.yaml")
    assert doc.data == {"until": "2030-01-01"}


LOOKUP = manifest_lookup(
    "dev",
    {"retries": 4, "url": "https://api", "flags": {"a": 1}},
    {"token": "TOKEN_DEV"},
    "environments/dev/environment.yaml",
)


def test_whole_placeholders_keep_their_type_and_embedded_ones_become_text() -> None:
    problems: list[Unresolved] = []
    data = {
        "retryCount": "((vars.retries))",
        "uri": "((vars.url))/v1?n=((vars.retries))",
        "expr": "${workflow.input.x}",
        "js": "((a.b))",
    }
    assert substitute(data, LOOKUP, problems) == {
        "retryCount": 4,
        "uri": "https://api/v1?n=4",
        "expr": "${workflow.input.x}",
        "js": "((a.b))",
    }
    assert problems == []


def test_secrets_are_never_resolved_offline() -> None:
    problems: list[Unresolved] = []
    assert substitute({"h": "Bearer ((secrets.token))"}, LOOKUP, problems) == {
        "h": "Bearer ((secrets.token))"
    }
    substitute({"h": "((secrets.tokne))"}, LOOKUP, problems)
    assert [(p.path, p.message) for p in problems] == [
        (("h",), "undefined secret ((secrets.tokne)) for environment 'dev'")
    ]
    assert problems[0].hint.endswith("; did you mean 'token'?")


def test_a_map_cannot_be_embedded_in_text() -> None:
    problems: list[Unresolved] = []
    substitute({"x": ["prefix ((vars.flags))"]}, LOOKUP, problems)
    assert [(p.path, p.message) for p in problems] == [
        (("x", 0), "((vars.flags)) is a map and cannot be placed inside a longer string")
    ]


def test_env_placeholders_are_for_environment_yaml_only(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/t.yaml": """\
                apiVersion: metasync/v1
                kind: TaskDef
                metadata: {name: t}
                spec: {ownerEmail: ((env.OWNER))}
                """
        },
    )
    result = run_cli("--project", str(tmp_path), "validate")
    assert result.exit_code == 1
    assert "manifests/t.yaml:4 ownerEmail: ((env.OWNER)) can only be used in environment.yaml" in (
        result.stderr
    )


def test_environment_reads_process_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path, {}, environment="server:\n  url: ((env.DEV_URL))\n")
    monkeypatch.setenv("DEV_URL", "http://127.0.0.1:9999")
    env = load_environment(tmp_path, "dev")
    assert env.config.server.url == "http://127.0.0.1:9999"
    assert env.config.policy.versioning == "in-place"
    assert env.config.policy.maxDeletes == 10

    monkeypatch.delenv("DEV_URL")
    # offline commands need no server address: validate and render still work
    offline = load_environment(tmp_path, "dev", connect=False)
    assert offline.config.server.url == "((env.DEV_URL))"
    assert run_cli("--project", str(tmp_path), "validate").exit_code == 0
    with pytest.raises(ValidationFailed) as failure:
        load_environment(tmp_path, "dev")
    assert str(failure.value) == (
        "error: environments/dev/environment.yaml:2 server.url: process environment variable "
        "DEV_URL is not set (read by ((env.DEV_URL)))\n  Export DEV_URL before running metasync."
    )


def test_variables_from_unset_process_variables_fail_even_offline(tmp_path: Path) -> None:
    write_project(
        tmp_path, {}, environment="server:\n  url: localhost:8080\nvars: {a: ((env.UNSET_X))}\n"
    )
    with pytest.raises(ValidationFailed) as failure:
        load_environment(tmp_path, "dev", connect=False)
    assert str(failure.value) == (
        "error: environments/dev/environment.yaml:3 vars.a: process environment variable UNSET_X "
        "is not set (read by ((env.UNSET_X)))\n  Export UNSET_X before running metasync."
    )
    (tmp_path / "environments" / "dev" / "environment.yaml").write_text(
        "server:\n  url: localhost:8080\n"
    )
    with pytest.raises(ValidationFailed) as failure:
        load_environment(tmp_path, "dev")
    assert str(failure.value) == (
        "error: environments/dev/environment.yaml:2 server.url: 'localhost:8080' is not an "
        "http:// or https:// URL"
    )


def test_environment_yaml_is_strict(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {},
        environment=(
            "server:\n  url: http://127.0.0.1:1\npolicy:\n  versioning: newest\n  maxDelete: 3\n"
            "promotion:\n  from: dev\n"
        ),
    )
    with pytest.raises(ValidationFailed) as failure:
        load_environment(tmp_path, "dev")
    assert str(failure.value) == (
        "error: environments/dev/environment.yaml:4 policy.versioning: 'newest' is not a valid "
        "versioning\n  Use one of: in-place, new-version (case-sensitive).\n"
        "error: environments/dev/environment.yaml:5 policy.maxDelete: unknown field 'maxDelete'; "
        "did you mean 'maxDeletes'?\n"
        "  Fix the name or remove the field (field names are Conductor's, case-sensitive)."
    )


def test_validate_without_environments_reports_variables(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "t.yaml").write_text(
        "apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {name: t}\nspec: {ownerEmail: ((vars.owner))}\n"
    )
    (desired,) = Project(tmp_path).validate()
    assert desired.environment is None
    assert [p.message for p in desired.errors] == [
        "((vars.owner)) cannot be resolved without an environment"
    ]


def test_labels_and_versions() -> None:
    root = Path(__file__).resolve().parent.parent
    desired = Project(root).render("dev")
    by_name = {r.name: r for r in desired.resources}
    assert by_name["order_to_cash"].labels == {"team": "orders", "tier": "critical"}
    assert by_name["order_to_cash"].key == ("WorkflowDef", "order_to_cash", 1)
    assert by_name["charge_payment"].key == ("TaskDef", "charge_payment", None)


def test_labels_take_variables_and_report_undefined_ones(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/t.yaml": """\
                apiVersion: metasync/v1
                kind: TaskDef
                metadata:
                  name: t
                  labels: {owner: ((vars.owner_email)), tier: ((vars.tier))}
                spec: {ownerEmail: ((vars.owner_email))}
                """
        },
    )
    result = run_cli("--project", str(tmp_path), "validate")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: manifests/t.yaml:5 metadata.labels.tier: undefined variable ((vars.tier)) for "
        "environment 'dev'\n"
    )


def test_plan_needs_the_secret_variables_it_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked before any request: the server address is never even contacted."""
    monkeypatch.delenv("API_TOKEN_DEV", raising=False)
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: WorkflowDef
                metadata: {name: wf}
                spec:
                  ownerEmail: ((vars.owner_email))
                  tasks:
                    - name: call
                      taskReferenceName: call
                      type: HTTP
                      inputParameters:
                        http_request:
                          uri: ((vars.base_url))/x
                          method: GET
                          headers: {Authorization: "Bearer ((secrets.api_token))"}
                """
        },
    )
    result = run_cli("--project", str(tmp_path), "plan", "--env", "dev")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: environments/dev/environment.yaml secrets.api_token: secret api_token: process "
        "environment variable API_TOKEN_DEV is not set\n"
        "  Export API_TOKEN_DEV before running plan or apply.\n"
    )
