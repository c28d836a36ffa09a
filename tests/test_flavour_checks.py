"""Offline checks per server flavour, judged by real servers of both flavours.

Each case is a pattern found in public definitions (conductor-oss test and e2e resources, the Java
and Python SDK examples), written anew here. For every case and flavour, ``validate`` finds no
error exactly when that flavour's server accepts the definition
(``POST /api/metadata/workflow/validate``); the table says what each flavour does, and the server
test proves the table.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import conductor_server
from metasync.model.checks import check_resources
from metasync.model.flavour import FLAVOURS, Flavour
from metasync.model.resource import Resource

OWNER = "team@example.com"


def wf(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "case", "version": 1, "ownerEmail": OWNER, "tasks": list(tasks), **extra}


def task(ref: str, type_: str = "SIMPLE", **fields: Any) -> dict[str, Any]:
    return {"name": ref, "taskReferenceName": ref, "type": type_, **fields}


def loop(
    *inner: dict[str, Any], condition: str | None = "$.loop['iteration'] < 3"
) -> dict[str, Any]:
    body = task("loop", "DO_WHILE", loopOver=list(inner))
    return body if condition is None else body | {"loopCondition": condition}


INLINE_CHILD = {"name": "inline_child", "version": 2, "tasks": [task("inner_work")]}
BOTH, ONLY_OSS, NONE = {"3.15", "oss"}, {"oss"}, set[str]()

# (label, workflow, the flavours whose server accepts it)
CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("loop_condition_empty", wf(loop(task("a"), condition="")), BOTH),
    ("loop_condition_missing", wf(loop(task("a"), condition=None)), NONE),
    ("loop_task_without_reference", wf(loop({"name": "a", "type": "SIMPLE"})), BOTH),
    ("loop_task_without_name", wf(loop({"taskReferenceName": "a"})), BOTH),
    ("loop_dynamic_fork_without_params", wf(loop(task("fan", "FORK_JOIN_DYNAMIC"))), BOTH),
    ("loop_http_without_request", wf(loop(task("call", "HTTP"))), BOTH),
    ("loop_bracket_reference", wf(loop(task("a", inputParameters={"i": "${loop['iteration']}"}))), BOTH),
    ("top_bracket_reference", wf(task("a"), task("b", inputParameters={"v": "${a['x']}"})), NONE),
    ("fork_task_without_reference", wf(task("f", "FORK_JOIN", forkTasks=[[{"name": "a"}]]), task("j", "JOIN")), NONE),
    ("inline_task_definition_without_name", wf(task("h", "HTTP", inputParameters={"http_request": {"uri": "http://x"}}, taskDefinition={"retryCount": 1})), BOTH),
    ("inline_sub_workflow", wf(task("s", "SUB_WORKFLOW", subWorkflowParam={"name": "inline_child", "workflowDefinition": INLINE_CHILD})), BOTH),
    ("dynamic_sub_workflow_definition", wf(task("plan"), task("s", "SUB_WORKFLOW", subWorkflowParam={"name": "dyn", "workflowDefinition": "${plan.output.workflow_def}"})), ONLY_OSS),
    ("sub_workflow_name_empty", wf(task("s", "SUB_WORKFLOW", subWorkflowParam={"name": ""})), ONLY_OSS),
    ("failure_workflow_from_input", wf(task("a"), failureWorkflow="$workflow.input.on_failure"), BOTH),
    ("switch_evaluator_empty", wf(task("s", "SWITCH", evaluatorType="", expression="x", decisionCases={"a": [task("a")]})), BOTH),
    ("switch_case_list_empty", wf(task("s", "SWITCH", evaluatorType="value-param", expression="x", decisionCases={"a": []})), BOTH),
    ("switch_without_cases", wf(task("s", "SWITCH", evaluatorType="value-param", expression="x")), NONE),
    ("event_sink_empty", wf(task("e", "EVENT", sink="")), BOTH),
    ("dynamic_name_param_empty", wf(task("d", "DYNAMIC", dynamicTaskNameParam="")), BOTH),
    ("dynamic_fork_with_fork_task_inputs", wf(task("f", "FORK_JOIN_DYNAMIC", inputParameters={"forkTaskName": "w", "forkTaskInputs": []}), task("j", "JOIN")), ONLY_OSS),
    ("http_with_top_level_uri", wf(task("h", "HTTP", inputParameters={"uri": "http://x", "method": "GET"})), ONLY_OSS),
    ("empty_expression", wf(task("a", inputParameters={"v": "${}"})), NONE),
    ("agent_task", wf(task("agent", "AGENT", inputParameters={"prompt": "hi"})), BOTH),
    ("llm_chat_task", wf(task("chat", "LLM_CHAT_COMPLETE", inputParameters={"llmProvider": "openai"})), BOTH),
    ("name_with_colon", wf(task("a")) | {"name": "team:case"}, ONLY_OSS),
    ("owner_email_not_an_address", wf(task("a"), ownerEmail="nobody"), ONLY_OSS),
]  # fmt: skip


def errors(spec: dict[str, Any], flavour: Flavour | None) -> list[str]:
    problems = check_resources([Resource("WorkflowDef", spec["name"], 1, spec)], flavour)
    return [p.message for p in problems if p.severity == "error"]


@pytest.mark.parametrize(("label", "spec", "accepted"), CASES, ids=[c[0] for c in CASES])
def test_errors_follow_the_flavour(label: str, spec: dict[str, Any], accepted: set[str]) -> None:
    for flavour in FLAVOURS:
        found = errors(spec, flavour)
        assert (found == []) == (flavour in accepted), (flavour, found)
    # flavour not known yet: an error only where every flavour refuses
    assert (errors(spec, None) == []) == bool(accepted), errors(spec, None)


@pytest.mark.server
def test_the_servers_judge_every_case(conductor: conductor_server.Server, flavour: Flavour) -> None:
    api = httpx.Client(base_url=f"{conductor.url}/api", timeout=30)
    wrong = []
    for label, spec, _ in CASES:
        response = api.post("/metadata/workflow/validate", json=spec)
        assert response.status_code in (200, 400, 500), response.text
        found = errors(spec, flavour)
        if (response.status_code == 200) != (found == []):
            wrong.append((label, response.status_code, response.text[:200], found))
    assert wrong == []


def test_flavour_rules_name_the_flavour_while_it_is_not_known() -> None:
    problems = check_resources(
        [Resource("WorkflowDef", "team:case", 1, CASES[-2][1])], flavour=None
    )
    assert [(p.severity, p.message) for p in problems if "':'" in p.message] == [
        ("warning", "workflow name 'team:case' contains ':' (Conductor 3.15 refuses it)")
    ]


def test_a_loop_task_the_server_does_not_check_is_a_warning() -> None:
    spec = wf(loop(task("call", "HTTP")))
    problems = check_resources([Resource("WorkflowDef", "case", 1, spec)], "3.15")
    assert [(p.severity, p.message) for p in problems] == [
        (
            "warning",
            "HTTP task needs inputParameters.http_request (or a TaskDef named 'call' whose "
            "inputTemplate has http_request) (the server does not check tasks inside a "
            "DO_WHILE's loopOver: the loop fails at run time)",
        )
    ]
