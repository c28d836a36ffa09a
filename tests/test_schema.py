"""`metasync schema`: JSON Schemas for editors, published in schemas/ and named on the first line of
every file of the example. A schema never refuses what metasync accepts."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from helpers import ROOT, run_cli, write_project
from metasync.manifests.json_schema import SCHEMA_KINDS, SchemaKind, file_name, json_schema
from metasync.model.flavour import Flavour

SCHEMAS = ROOT / "schemas"
#: the files of the example each schema is for
EXAMPLE: dict[SchemaKind, list[Path]] = {
    "manifest": sorted((ROOT / "manifests").rglob("*.yaml")),
    "environment": sorted((ROOT / "environments").glob("*/environment.yaml")),
    "overlay": sorted((ROOT / "environments").glob("*/overlays/*.yaml")),
    "project": [ROOT / "metasync.yaml"],
}
COMMENT = "# yaml-language-server: $schema="


def validator(kind: SchemaKind, flavour: Flavour = "oss") -> jsonschema.Draft7Validator:
    """Draft 7, as the schema says: what editors implement in full."""
    schema = json_schema(kind, flavour)
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft7Validator
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(kind: SchemaKind, text: str, flavour: Flavour = "oss") -> list[str]:
    """Every schema error of every document of ``text``, as 'path: message' (of the alternative
    that comes closest, as editors say it)."""
    check = validator(kind, flavour)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for doc in yaml.safe_load_all(textwrap.dedent(text))
        for e in map(best_match_of, check.iter_errors(doc))
    ]


def best_match_of(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    return jsonschema.exceptions.best_match([error]) or error


def test_every_file_of_the_example_names_its_published_schema_on_its_first_line() -> None:
    for kind, files in EXAMPLE.items():
        assert files, kind
        for path in files:
            first = path.read_text().splitlines()[0]
            assert first.startswith(COMMENT), path
            target = (path.parent / first.removeprefix(COMMENT)).resolve()
            assert target == SCHEMAS / file_name(kind), path


@pytest.mark.parametrize("flavour", ["oss", "3.15"])
def test_the_example_validates_against_the_published_schemas(flavour: Flavour) -> None:
    published = {k: json.loads((SCHEMAS / file_name(k)).read_text()) for k in SCHEMA_KINDS}
    count = 0
    for kind, files in EXAMPLE.items():
        schema = published[kind] if flavour == "oss" else json_schema(kind, flavour)
        check = jsonschema.Draft7Validator(schema)
        for path in files:
            for doc in yaml.safe_load_all(path.read_text()):
                problems = [f"{list(e.absolute_path)}: {e.message}" for e in check.iter_errors(doc)]
                assert problems == [], path
                count += 1
    assert count >= 35  # every document was read (32 manifests, 3 environments, overlays...)


def test_the_published_schemas_are_what_metasync_schema_writes_now(tmp_path: Path) -> None:
    result = run_cli("schema", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in SCHEMAS.iterdir())
    for name in written:
        assert (tmp_path / name).read_text() == (SCHEMAS / name).read_text(), (
            f"schemas/{name} is stale: run `metasync schema --out schemas`"
        )
    assert f"wrote {tmp_path / 'manifest.schema.json'} (for manifests/**/*.yaml)" in result.stdout


def test_metasync_schema_prints_one_schema_and_says_how_to_get_the_others() -> None:
    printed = run_cli("schema", "--kind", "overlay", "--flavour", "3.15")
    assert printed.exit_code == 0
    assert json.loads(printed.stdout) == json_schema("overlay", "3.15")
    unnamed = run_cli("schema")
    assert unnamed.exit_code == 1
    assert "name it with --kind" in unnamed.stderr
    assert "Traceback" not in unnamed.output


def test_the_3_15_schema_completes_only_what_3_15_knows(tmp_path: Path) -> None:
    oss, old = json_schema("manifest", "oss"), json_schema("manifest", "3.15")
    assert "WorkflowSchedule" in oss["properties"]["kind"]["enum"]
    assert "WorkflowSchedule" not in old["properties"]["kind"]["enum"]
    assert "totalTimeoutSeconds" in oss["definitions"]["TaskDef"]["properties"]
    assert "totalTimeoutSeconds" not in old["definitions"]["TaskDef"]["properties"]
    total = oss["definitions"]["TaskDef"]["properties"]["totalTimeoutSeconds"]
    assert total["description"] == "conductor-oss only (Conductor 3.15 drops it)"
    types = [old["definitions"]["WorkflowTask"]["properties"]["type"]["anyOf"][0]["enum"]]
    assert "HTTP" in types[0]
    assert "LLM_CHAT_COMPLETE" not in types[0]
    run_cli("schema", "--flavour", "3.15", "--out", str(tmp_path))
    assert (tmp_path / "manifest-3.15.schema.json").is_file()
    # a field only conductor-oss knows is not refused (metasync accepts it; 3.15 drops it)
    taskdef = """\
        apiVersion: metasync/v1
        kind: TaskDef
        metadata: {name: t}
        spec: {totalTimeoutSeconds: 60}
    """
    assert errors("manifest", taskdef, "3.15") == []


TASKDEF = """\
    apiVersion: metasync/v1
    kind: TaskDef
    metadata: {{name: charge}}
    spec:
      ownerEmail: team@example.com
      {field}
"""


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("retryCount: three", "spec.retryCount"),
        ('retryCount: "3"', "spec.retryCount"),  # metasync's models are strict
        ("retryCount: -1", "spec.retryCount"),
        ("timeoutPolicy: RETRY_LATER", "spec.timeoutPolicy"),
        ("inputSchema: {data: []}", "spec.inputSchema.data"),
        ("retryCount: ((env.N))", "spec.retryCount"),  # env is for environment.yaml only
    ],
)
def test_a_wrong_value_is_refused_by_the_schema_as_by_metasync(
    tmp_path: Path, field: str, where: str
) -> None:
    text = TASKDEF.format(field=field)
    found = errors("manifest", text)
    assert [e.split(": ")[0] for e in found] == [where], found
    project = write_project(tmp_path, {"manifests/t.yaml": textwrap.dedent(text)})
    assert run_cli("--project", str(project), "validate").exit_code == 1


@pytest.mark.parametrize(
    "field",
    [
        "retryCount: ((vars.retries))",  # a number
        "retryCount: (( vars.retries ))",
        "enforceSchema: ((vars.strict))",  # a boolean
        "inputSchema: ((vars.schema))",  # a whole object
        "timeoutPolicy: ((vars.policy))",  # one of a few words
        "inputKeys: [((vars.key)), orderId]",
        "inputTemplate: {amount: ((vars.retries)), at: '${workflow.input.at}'}",
        "description: 'charges ((vars.key)) with ${workflow.input.card}'",
        "someFutureField: {any: thing}",  # unknown: a warning
    ],
)
def test_what_metasync_accepts_the_schema_accepts(tmp_path: Path, field: str) -> None:
    text = TASKDEF.format(field=field)
    assert errors("manifest", text) == []
    environment = """\
        server: {url: http://127.0.0.1:18081}
        vars:
          retries: 4
          strict: true
          schema: {name: charge_input, type: JSON}
          policy: RETRY
          key: cardId
    """
    project = write_project(
        tmp_path,
        {"manifests/t.yaml": textwrap.dedent(text)},
        environment=textwrap.dedent(environment),
    )
    result = run_cli("--project", str(project), "validate")
    assert result.exit_code == 0, result.stderr


def test_the_envelope_is_checked_as_metasync_checks_it() -> None:
    many = """\
        apiVersion: metasync/v1
        kind: Task
        metadata: {name: a}
        spec: {}
        ---
        apiVersion: metasync/v2
        kind: TaskDef
        metadata: {name: b, owner: me}
        spec: {}
        extra: 1
        ---
        kind: WorkflowDef
        metadata: {name: c}
    """
    found = errors("manifest", many)
    assert any(e.startswith("kind: 'Task' is not one of") for e in found), found
    assert any(e.startswith("apiVersion: 'metasync/v1' was expected") for e in found), found
    assert any("'owner' was unexpected" in e and e.startswith("metadata:") for e in found), found
    assert any("'extra' was unexpected" in e for e in found), found
    assert any("'apiVersion' is a required property" in e for e in found), found
    assert any("'spec' is a required property" in e for e in found), found
    # a workflow needs tasks; its name comes from metadata.name
    workflow = "apiVersion: metasync/v1\nkind: WorkflowDef\nmetadata: {name: w}\nspec: {}\n"
    assert errors("manifest", workflow) == ["spec: 'tasks' is a required property"]


def test_a_workflow_test_and_a_nested_task_are_checked() -> None:
    text = """\
        apiVersion: metasync/v1
        kind: WorkflowTest
        metadata: {name: t}
        spec:
          workflow: w
          mocks: {a: {status: DONE}}
        ---
        apiVersion: metasync/v1
        kind: WorkflowDef
        metadata: {name: w}
        spec:
          tasks:
            - name: s
              taskReferenceName: s
              type: SWITCH
              decisionCases:
                x: [{name: a, taskReferenceName: a, type: MY_WORKER, optional: maybe}]
    """
    found = errors("manifest", text)
    assert [e.split(": ")[0] for e in found] == [
        "spec.mocks.a.status",
        "spec.tasks.0.decisionCases.x.0.optional",
    ], found


def test_an_overlay_may_remove_keys_and_name_directives_but_not_mistype() -> None:
    overlay = """\
        kind: WorkflowDef
        metadata: {name: order_fulfillment, version: 2}
        patch:
          description: null
          tasks:
            - {taskReferenceName: audit, $patch: delete}
            - {name: notify, taskReferenceName: notify_qa, type: SIMPLE, $after: charge}
            - taskReferenceName: charge
              retryCount: ((vars.retries))
        jsonPatch:
          - {op: replace, path: /timeoutSeconds, value: 60}
    """
    assert errors("overlay", overlay) == []
    wrong = """\
        kind: TaskDef
        metadata: {name: charge}
        patch: {retryCount: many}
        jsonPatch: [{op: rename, path: /x}]
    """
    found = errors("overlay", wrong)
    assert sorted(e.split(":")[0] for e in found) == ["jsonPatch.0.op", "patch.retryCount"], found


def test_environment_yaml_refuses_unknown_keys_as_metasync_does() -> None:
    found = errors(
        "environment",
        """\
        server: {url: "((env.DEV_URL))", flavour: oss}
        policy: {maxDelete: 3}
        notify: ["((env.HOOK))"]
        """,
    )
    assert [e.split(": ")[0] for e in found] == ["policy"], found
    assert "'maxDelete' was unexpected" in found[0]
    assert errors("environment", "vars: {a: 1}\n") == [": 'server' is a required property"]


def schema_of(kind: SchemaKind) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / file_name(kind)).read_text())
    return schema


def test_the_server_s_own_fields_are_not_completed() -> None:
    taskdef = schema_of("manifest")["definitions"]["TaskDef"]["properties"]
    assert "ownerEmail" in taskdef
    assert "createTime" not in taskdef
    assert "ownerApp" not in taskdef


def test_ignore_and_warnings_ignore_are_accepted_as_metasync_accepts_them() -> None:
    """``ignore:`` entries are a field path alone or a mapping; ``warnings.ignore`` needs a rule
    (and metasync a reason): the schema takes both forms, in environment.yaml and metasync.yaml."""
    environment = """\
        server: {url: "http://localhost:8080"}
        ignore:
          - description
          - {kind: WorkflowDef, name: "payment_*", path: "tasks[ref=a].inputParameters", reason: vault}
        warnings:
          ignore: [{rule: undefined-taskdef, files: "manifests/legacy/*", reason: elsewhere}]
        """
    assert errors("environment", environment) == []
    project = """\
        name: orders
        ignore: [description]
        warnings: {ignore: [{rule: unknown-field, reason: the UI adds it}]}
        """
    assert errors("project", project) == []
    found = errors("environment", 'server: {url: "http://x"}\nignore: [{kind: WorkflowDef}]\n')
    assert len(found) == 1, found
    assert "'path' is a required property" in found[0]


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ('timeoutSeconds: "30"', "spec.timeoutSeconds"),
        ('maxIterations: "5"', "spec.maxIterations"),
        ("expect: {iterations: {loop: two}}", "spec.expect.iterations.loop"),
    ],
)
def test_a_workflow_test_is_as_strict_as_its_schema(tmp_path: Path, field: str, where: str) -> None:
    """A WorkflowTest's numbers are numbers for metasync as for its schema (a quoted "30" was
    accepted by validate and refused by editors)."""
    workflow = """\
        apiVersion: metasync/v1
        kind: WorkflowDef
        metadata: {name: wf}
        spec:
          ownerEmail: team@example.com
          tasks: [{name: t, taskReferenceName: t, type: SIMPLE}]
        """
    test = f"""\
        apiVersion: metasync/v1
        kind: WorkflowTest
        metadata: {{name: wf_runs}}
        spec:
          workflow: wf
          {field}
        """
    found = errors("manifest", test)
    assert [e.split(": ")[0] for e in found] == [where], found
    files = {
        "manifests/wf.yaml": textwrap.dedent(workflow),
        "manifests/t.yaml": textwrap.dedent(test),
    }
    result = run_cli("--project", str(write_project(tmp_path, files)), "validate")
    assert result.exit_code == 1
    assert f"error: manifests/t.yaml:6 {where.removeprefix('spec.')}: wrong type" in result.stderr
