"""Offline checks, and the real server as their judge.

Every definition the offline checks call an error must be refused by a real server of the flavour
they check for, and every one they only warn about must be accepted: the checks may not invent
rules. The messages are asserted for 3.15; test_flavour_checks.py holds the cases where the two
flavours differ, each judged by both servers.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import conductor_server
from metasync.errors import Problem
from metasync.model.checks import check_resources
from metasync.model.flavour import Flavour
from metasync.model.resource import Resource

OWNER = "team@example.com"


def workflow(name: str, tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": name, "version": 1, "ownerEmail": OWNER, "tasks": tasks, **extra}


def inline(ref: str) -> dict[str, Any]:
    return {
        "name": ref,
        "taskReferenceName": ref,
        "type": "INLINE",
        "inputParameters": {"evaluatorType": "javascript", "expression": "1"},
    }


def check(*specs: tuple[str, dict[str, Any]], flavour: Flavour | None = "3.15") -> list[Problem]:
    resources = [
        Resource(kind, spec["name"], spec.get("version") if kind == "WorkflowDef" else None, spec)
        for kind, spec in specs
    ]
    return check_resources(resources, flavour)


def messages(problems: list[Problem], severity: str) -> list[str]:
    return [
        f"{p.location.path if p.location else ''}: {p.message}"
        for p in problems
        if p.severity == severity
    ]


# (label, spec) of workflows the checks must reject, with the start of the expected message
REJECTED: list[tuple[str, dict[str, Any], str]] = [
    (
        "switch_no_expression",
        workflow(
            "switch_no_expression",
            [
                {
                    "name": "s",
                    "taskReferenceName": "s",
                    "type": "SWITCH",
                    "evaluatorType": "value-param",
                    "decisionCases": {"a": [inline("a")]},
                }
            ],
        ),
        "tasks[ref=s]: SWITCH task needs an expression",
    ),
    (
        "switch_no_cases",
        workflow(
            "switch_no_cases",
            [
                {
                    "name": "s",
                    "taskReferenceName": "s",
                    "type": "SWITCH",
                    "evaluatorType": "value-param",
                    "expression": "x",
                    "inputParameters": {"x": "${workflow.input.x}"},
                }
            ],
        ),
        "tasks[ref=s]: SWITCH task needs at least one case in decisionCases",
    ),
    (
        "do_while_no_loop_over",
        workflow(
            "do_while_no_loop_over",
            [{"name": "l", "taskReferenceName": "l", "type": "DO_WHILE", "loopCondition": "false"}],
        ),
        "tasks[ref=l]: DO_WHILE task needs at least one task in loopOver",
    ),
    (
        "fork_no_branches",
        workflow(
            "fork_no_branches",
            [{"name": "f", "taskReferenceName": "f", "type": "FORK_JOIN", "forkTasks": []}],
        ),
        "tasks[ref=f]: FORK_JOIN task needs at least one branch in forkTasks",
    ),
    (
        "http_no_request",
        workflow(
            "http_no_request",
            [{"name": "no_such_http_def", "taskReferenceName": "h", "type": "HTTP"}],
        ),
        "tasks[ref=h].inputParameters: HTTP task needs inputParameters.http_request",
    ),
    (
        "jq_no_query",
        workflow(
            "jq_no_query",
            [{"name": "no_such_jq_def", "taskReferenceName": "j", "type": "JSON_JQ_TRANSFORM"}],
        ),
        "tasks[ref=j].inputParameters: JSON_JQ_TRANSFORM task needs inputParameters.queryExpression",
    ),
    (
        "terminate_bad_status",
        workflow(
            "terminate_bad_status",
            [
                {
                    "name": "t",
                    "taskReferenceName": "t",
                    "type": "TERMINATE",
                    "inputParameters": {"terminationStatus": "DONE"},
                }
            ],
        ),
        "tasks[ref=t].inputParameters: TERMINATE task's inputParameters.terminationStatus is 'DONE'",
    ),
    (
        "terminate_optional",
        workflow(
            "terminate_optional",
            [
                {
                    "name": "t",
                    "taskReferenceName": "t",
                    "type": "TERMINATE",
                    "optional": True,
                    "inputParameters": {"terminationStatus": "FAILED"},
                }
            ],
        ),
        "tasks[ref=t].optional: a TERMINATE task cannot be optional",
    ),
    (
        "event_no_sink",
        workflow("event_no_sink", [{"name": "e", "taskReferenceName": "e", "type": "EVENT"}]),
        "tasks[ref=e]: EVENT task needs a sink",
    ),
    (
        "sub_workflow_no_param",
        workflow(
            "sub_workflow_no_param",
            [{"name": "s", "taskReferenceName": "s", "type": "SUB_WORKFLOW"}],
        ),
        "tasks[ref=s]: SUB_WORKFLOW task needs subWorkflowParam.name",
    ),
    (
        "wait_duration_and_until",
        workflow(
            "wait_duration_and_until",
            [
                {
                    "name": "w",
                    "taskReferenceName": "w",
                    "type": "WAIT",
                    "inputParameters": {"duration": "1 hours", "until": "2030-01-01 00:00 UTC"},
                }
            ],
        ),
        "tasks[ref=w].inputParameters: WAIT task takes duration or until, not both",
    ),
    (
        "duplicate_ref_in_loop",
        workflow(
            "duplicate_ref_in_loop",
            [
                inline("a"),
                {
                    "name": "l",
                    "taskReferenceName": "l",
                    "type": "DO_WHILE",
                    "loopCondition": "false",
                    "loopOver": [inline("a")],
                },
            ],
        ),
        "tasks[ref=a].taskReferenceName: taskReferenceName 'a' is used more than once",
    ),
    (
        "schema_version_1",
        workflow("schema_version_1", [inline("a")], schemaVersion=1),
        "schemaVersion: schemaVersion must be 2, not 1",
    ),
    (
        "bad:name",
        workflow("bad:name", [inline("a")]),
        "name: workflow name 'bad:name' contains ':'",
    ),
    (
        "unknown_ref",
        workflow(
            "unknown_ref",
            [
                {
                    "name": "a",
                    "taskReferenceName": "a",
                    "type": "INLINE",
                    "inputParameters": {"value": "${nowhere.output.x}"},
                }
            ],
        ),
        "tasks[ref=a].inputParameters.value: ${nowhere.output.x} names 'nowhere'",
    ),
    (
        "whitespace_expr",
        workflow(
            "whitespace_expr",
            [inline("a") | {"inputParameters": {"value": "${workflow.input. x}"}}],
        ),
        "tasks[ref=a].inputParameters.value: expression ${workflow.input. x} contains whitespace",
    ),
    (
        "decision_no_case_param",
        workflow(
            "decision_no_case_param",
            [
                {
                    "name": "d",
                    "taskReferenceName": "d",
                    "type": "DECISION",
                    "decisionCases": {"a": [inline("a")]},
                }
            ],
        ),
        "tasks[ref=d]: DECISION task needs caseValueParam or caseExpression",
    ),
    (
        "do_while_no_condition",
        workflow(
            "do_while_no_condition",
            [
                {
                    "name": "l",
                    "taskReferenceName": "l",
                    "type": "DO_WHILE",
                    "loopOver": [inline("a")],
                }
            ],
        ),
        "tasks[ref=l]: DO_WHILE task needs loopCondition",
    ),
    (
        "dynamic_no_param",
        workflow("dynamic_no_param", [{"name": "d", "taskReferenceName": "d", "type": "DYNAMIC"}]),
        "tasks[ref=d]: DYNAMIC task needs dynamicTaskNameParam",
    ),
    (
        "fork_dynamic_no_params",
        workflow(
            "fork_dynamic_no_params",
            [
                {"name": "f", "taskReferenceName": "f", "type": "FORK_JOIN_DYNAMIC"},
                {"name": "j", "taskReferenceName": "j", "type": "JOIN"},
            ],
        ),
        "tasks[ref=f]: FORK_JOIN_DYNAMIC task needs dynamicForkTasksParam and "
        "dynamicForkTasksInputParamName",
    ),
    (
        "fork_dynamic_both_styles",
        workflow(
            "fork_dynamic_both_styles",
            [
                {
                    "name": "f",
                    "taskReferenceName": "f",
                    "type": "FORK_JOIN_DYNAMIC",
                    "dynamicForkJoinTasksParam": "legacy",
                    "dynamicForkTasksParam": "tasks",
                    "dynamicForkTasksInputParamName": "inputs",
                },
                {"name": "j", "taskReferenceName": "j", "type": "JOIN"},
            ],
        ),
        "tasks[ref=f]: FORK_JOIN_DYNAMIC takes dynamicForkJoinTasksParam alone",
    ),
    (
        "kafka_no_request",
        workflow(
            "kafka_no_request",
            [{"name": "no_such_kafka_def", "taskReferenceName": "k", "type": "KAFKA_PUBLISH"}],
        ),
        "tasks[ref=k].inputParameters: KAFKA_PUBLISH task needs inputParameters.kafka_request",
    ),
    (
        "bad_owner_email",
        workflow("bad_owner_email", [inline("a")], ownerEmail="payments team"),
        "ownerEmail: ownerEmail 'payments team' is not an e-mail address",
    ),
]


@pytest.mark.parametrize(("label", "spec", "expected"), REJECTED, ids=[r[0] for r in REJECTED])
def test_offline_error(label: str, spec: dict[str, Any], expected: str) -> None:
    errors = messages(check(("WorkflowDef", spec)), "error")
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors


@pytest.mark.server
def test_the_server_rejects_what_the_checks_call_errors(
    conductor: conductor_server.Server, prefix: str, flavour: Flavour
) -> None:
    api = httpx.Client(base_url=f"{conductor.url}/api", timeout=30)
    wrong = []
    for label, spec, _ in REJECTED:
        errors = messages(check(("WorkflowDef", spec), flavour=flavour), "error")
        response = api.post("/metadata/workflow", json=spec | {"name": prefix + spec["name"]})
        assert response.status_code in (200, 400, 500), response.text
        if (response.status_code == 200) != (errors == []):
            wrong.append((label, response.status_code, errors))
    assert wrong == []


def test_taskdef_response_timeout_default_exceeds_timeout() -> None:
    problems = check(("TaskDef", {"name": "t", "ownerEmail": OWNER, "timeoutSeconds": 60}))
    assert messages(problems, "error") == [
        "timeoutSeconds: responseTimeoutSeconds 3600 (its default) exceeds timeoutSeconds 60; "
        "the server requires responseTimeoutSeconds <= timeoutSeconds"
    ]
    assert problems[0].hint == "Set responseTimeoutSeconds to at most 60, or raise timeoutSeconds."


@pytest.mark.server
def test_the_server_rejects_the_response_timeout_default(
    conductor: conductor_server.Server, prefix: str, flavour: Flavour
) -> None:
    api = httpx.Client(base_url=f"{conductor.url}/api", timeout=30)
    bad = {"name": prefix + "t", "ownerEmail": OWNER, "timeoutSeconds": 60}
    assert api.post("/metadata/taskdefs", json=[bad]).status_code == 400
    good = bad | {"responseTimeoutSeconds": 60}
    assert check(("TaskDef", good), flavour=flavour) == []
    assert api.post("/metadata/taskdefs", json=[good]).status_code == 200


# workflows the server accepts, but that are almost certainly mistakes: warnings only
WARNED: list[tuple[str, dict[str, Any], str]] = [
    (
        "simple_without_taskdef",
        workflow(
            "simple_without_taskdef", [{"name": "undefined_worker", "taskReferenceName": "w"}]
        ),
        "tasks[ref=w].name: no TaskDef 'undefined_worker' in this project",
    ),
    (
        "sub_workflow_elsewhere",
        workflow(
            "sub_workflow_elsewhere",
            [
                {
                    "name": "s",
                    "taskReferenceName": "s",
                    "type": "SUB_WORKFLOW",
                    "subWorkflowParam": {"name": "defined_elsewhere"},
                }
            ],
        ),
        "tasks[ref=s].subWorkflowParam.name: sub-workflow 'defined_elsewhere' is not defined",
    ),
    (
        "lower_case_type",
        workflow("lower_case_type", [inline("a") | {"type": "inline"}]),
        "tasks[ref=a].type: type 'inline' is not a Conductor system task; did you mean 'INLINE'?",
    ),
    (
        "nested_unknown_ref",
        workflow(
            "nested_unknown_ref",
            [
                {
                    "name": "l",
                    "taskReferenceName": "l",
                    "type": "DO_WHILE",
                    "loopCondition": "false",
                    "loopOver": [inline("b") | {"inputParameters": {"v": "${nowhere.output}"}}],
                }
            ],
        ),
        "tasks[ref=b].inputParameters.v: ${nowhere.output} names 'nowhere'",
    ),
    (
        "join_on_unknown",
        workflow(
            "join_on_unknown",
            [
                {
                    "name": "f",
                    "taskReferenceName": "f",
                    "type": "FORK_JOIN",
                    "forkTasks": [[inline("a")]],
                },
                {"name": "j", "taskReferenceName": "j", "type": "JOIN", "joinOn": ["b"]},
            ],
        ),
        "tasks[ref=j].joinOn[0]: joinOn names 'b', which is no task of this workflow",
    ),
]


@pytest.mark.parametrize(("label", "spec", "expected"), WARNED, ids=[w[0] for w in WARNED])
def test_offline_warning(label: str, spec: dict[str, Any], expected: str) -> None:
    problems = check(("WorkflowDef", spec))
    assert messages(problems, "error") == []
    warnings = messages(problems, "warning")
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(expected)


@pytest.mark.server
def test_the_server_accepts_what_the_checks_only_warn_about(
    conductor: conductor_server.Server, prefix: str
) -> None:
    api = httpx.Client(base_url=f"{conductor.url}/api", timeout=30)
    for label, spec, _ in WARNED:
        response = api.post("/metadata/workflow", json=spec | {"name": prefix + spec["name"]})
        assert response.status_code == 200, f"{label}: {response.text}"


def test_http_task_may_take_its_request_from_the_task_definition() -> None:
    taskdef = {
        "name": "call_ledger",
        "ownerEmail": OWNER,
        "inputTemplate": {"http_request": {"uri": "https://ledger", "method": "GET"}},
    }
    wf = workflow(
        "uses_template", [{"name": "call_ledger", "taskReferenceName": "c", "type": "HTTP"}]
    )
    assert check(("TaskDef", taskdef), ("WorkflowDef", wf)) == []


def test_references_resolve_against_the_project() -> None:
    child = workflow("child", [inline("a")])
    parent = workflow(
        "parent",
        [
            {
                "name": "c",
                "taskReferenceName": "c",
                "type": "SUB_WORKFLOW",
                "subWorkflowParam": {"name": "child", "version": 2},
            }
        ],
        failureWorkflow="compensate",
    )
    assert messages(check(("WorkflowDef", child), ("WorkflowDef", parent)), "warning") == [
        "failureWorkflow: failureWorkflow 'compensate' is not defined in this project",
        "tasks[ref=c].subWorkflowParam.version: sub-workflow 'child' version 2 is not defined in "
        "this project (versions: 1)",
    ]


def test_event_handler_checks() -> None:
    handler = {
        "name": "h",
        "event": "conductor:wf:ref",
        "actions": [
            {"action": "start_workflow", "start_workflow": {"name": "missing_wf"}},
            {"action": "complete_task"},
        ],
    }
    problems = check(("EventHandler", handler))
    assert messages(problems, "error") == [
        "actions[1]: action complete_task needs its details under `complete_task:`"
    ]
    assert messages(problems, "warning") == [
        "name: active is not set: Conductor registers the handler inactive",
        "actions[0].start_workflow.name: start_workflow names 'missing_wf', which is not defined "
        "in this project",
    ]


def test_owner_email_missing_and_server_managed_fields_are_warnings() -> None:
    problems = check(("TaskDef", {"name": "t", "createTime": 1, "ownerApp": "ui"}))
    assert messages(problems, "error") == []
    assert messages(problems, "warning") == [
        "createTime: createTime is written by the server or by metasync; the value here is ignored",
        "ownerApp: ownerApp is written by the server or by metasync; the value here is ignored",
        "name: ownerEmail is not set: Conductor 3.15 rejects the definition unless the server "
        "runs with conductor.app.ownerEmailMandatory=false",
    ]
