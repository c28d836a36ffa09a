"""Offline checks of a workflow definition and its tasks, at every depth (see model/checks.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from metasync.errors import Severity, did_you_mean
from metasync.model.flavour import task_types
from metasync.model.kinds.checking import Index, Reporter, owner_email
from metasync.model.paths import RawPath
from metasync.model.tasks import TaskAt, walk_tasks

_EXPR = re.compile(r"\$\{([^}]*)\}")
_ENV_LIKE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SPACE = re.compile(r"\s")
TERMINATION_STATUSES = ("COMPLETED", "FAILED", "TERMINATED")
#: task types whose required input may come from a task definition's inputTemplate instead
_TEMPLATED_INPUT = {
    "HTTP": "http_request",
    "KAFKA_PUBLISH": "kafka_request",
    "JSON_JQ_TRANSFORM": "queryExpression",
}


def check_workflow(spec: Mapping[str, Any], report: Reporter, index: Index) -> None:
    owner_email(spec, report)
    if ":" in spec["name"]:
        report.refused_by(
            "3.15",
            f"workflow name {spec['name']!r} contains ':'",
            ("name",),
            "Use letters, digits, '_' and '-'.",
        )
    if spec.get("schemaVersion", 2) != 2:
        report(
            "error",
            f"schemaVersion must be 2, not {spec['schemaVersion']}",
            ("schemaVersion",),
            "Set schemaVersion: 2, or leave it out.",
        )
    if not spec.get("tasks"):
        report(
            "error",
            "the workflow has no tasks; Conductor requires at least one",
            ("tasks",),
            "Add a task under tasks:.",
        )
        return
    failure = spec.get("failureWorkflow")
    # "$workflow.input.x" and "${...}" are read at run time (3.15 reads a $-name from the input)
    if failure and not failure.startswith("$") and failure not in index.versions("WorkflowDef"):
        report(
            "warning",
            f"failureWorkflow {failure!r} is not defined in this project",
            ("failureWorkflow",),
            "Define it under manifests/, or check the name.",
            rule="undefined-failure-workflow",
        )

    tasks = list(walk_tasks(spec))
    first_seen: dict[str, TaskAt] = {}
    for at in tasks:
        if not at.ref:  # a loop's task may lack one (the server does not check there)
            continue
        if at.ref in first_seen:
            other = (
                report.resource.origin.locate(first_seen[at.ref].path)
                if report.resource.origin
                else None
            )
            where = f" (first at line {other.line})" if other and other.line else ""
            report(
                "error",
                f"taskReferenceName {at.ref!r} is used more than once{where}; it must be "
                "unique across the whole workflow, at every depth",
                (*at.path, "taskReferenceName"),
                "Rename one of them.",
            )
        else:
            first_seen[at.ref] = at
    for at in tasks:
        _task(at, report, index, first_seen)


_IN_LOOP = (
    " (the server does not check tasks inside a DO_WHILE's loopOver: the loop fails at run time)"
)


def _task(at: TaskAt, report: Reporter, index: Index, refs: Mapping[str, TaskAt]) -> None:
    task, path, kind = at.task, at.path, at.type
    params = task.get("inputParameters") or {}
    flavour = report.flavour

    def fail(message: str, where: RawPath, hint: str | None = None) -> None:
        """What the server refuses, except inside a loop, where it takes it unchecked."""
        if at.in_loop:
            report("warning", message + _IN_LOOP, where, hint, rule="unchecked-in-loop")
        else:
            report("error", message, where, hint)

    def need(field: str, what: str | None = None) -> bool:
        # an empty string is a value (the server checks for null); an empty list or map is not
        if task.get(field) is None or task.get(field) in ([], {}):
            fail(f"{kind} task needs {what or field}", (*path,),
                 f"Add `{field}:` to task {at.ref or task.get('name')!r}.")  # fmt: skip
            return False
        return True

    for field in ("name", "taskReferenceName"):
        if not task.get(field):
            fail(f"the task has no {field}", (*path,), f"Give the task a {field}.")
    name = str(task.get("name") or "")
    known = task_types(flavour)
    if kind not in known:
        if flavour == "3.15" and kind in task_types("oss"):
            report(
                "warning",
                f"type {kind!r} is a conductor-oss task type: Conductor 3.15 runs it as a worker "
                "task, which waits for a poller",
                (*path, "type"),
                rule="oss-task-type",
            )
        elif kind.upper() in known:
            report(
                "warning",
                f"type {kind!r} is not a Conductor system task; did you mean {kind.upper()!r}? "
                "(an unknown type runs as a worker task and waits for a poller)",
                (*path, "type"),
                "Task types are upper case.",
                rule="task-type-case",
            )
    if kind == "SWITCH":
        need("evaluatorType")
        need("expression", "an expression (the value or script that picks the case)")
        need("decisionCases", "at least one case in decisionCases")
    elif kind == "DECISION":
        if task.get("caseValueParam") is None and task.get("caseExpression") is None:
            fail(
                "DECISION task needs caseValueParam or caseExpression",
                (*path,),
                "DECISION is deprecated: prefer SWITCH with evaluatorType and expression.",
            )
        need("decisionCases", "at least one case in decisionCases")
    elif kind == "DO_WHILE":
        need("loopCondition")  # '' is accepted: only a missing condition is refused
        need("loopOver", "at least one task in loopOver")
    elif kind == "DYNAMIC":
        need("dynamicTaskNameParam")
    elif kind == "FORK_JOIN":
        need("forkTasks", "at least one branch in forkTasks")
    elif kind == "FORK_JOIN_DYNAMIC":
        legacy = task.get("dynamicForkJoinTasksParam") is not None
        modern = [task.get(f) is not None
                  for f in ("dynamicForkTasksParam", "dynamicForkTasksInputParamName")]  # fmt: skip
        if legacy and any(modern):
            fail(
                "FORK_JOIN_DYNAMIC takes dynamicForkJoinTasksParam alone, or "
                "dynamicForkTasksParam with dynamicForkTasksInputParamName, not both",
                (*path,),
            )
        elif not legacy and not all(modern):
            message = (
                "FORK_JOIN_DYNAMIC task needs dynamicForkTasksParam and "
                "dynamicForkTasksInputParamName"
            )
            if "forkTaskInputs" in params and not at.in_loop:  # conductor-oss's own way
                report.refused_by("3.15", message + " (inputParameters.forkTaskInputs is "
                                  "conductor-oss's)", (*path,))  # fmt: skip
            else:
                fail(message, (*path,))
    elif kind in _TEMPLATED_INPUT:
        key = _TEMPLATED_INPUT[kind]
        template = (index.specs("TaskDef").get(name) or {}).get("inputTemplate") or {}
        if key not in params and key not in template:
            message = (
                f"{kind} task needs inputParameters.{key} (or a TaskDef named "
                f"{name!r} whose inputTemplate has {key})"
            )
            hint = f"Add `{key}:` under inputParameters."
            if kind == "HTTP" and ("uri" in params or "method" in params) and not at.in_loop:
                report.refused_by("3.15", message + " (a top-level uri is conductor-oss's)",
                                  (*path, "inputParameters"), hint)  # fmt: skip
            else:
                fail(message, (*path, "inputParameters"), hint)
    elif kind == "TERMINATE":
        status = params.get("terminationStatus")
        if status not in TERMINATION_STATUSES:
            shown = "is missing" if status is None else f"is {status!r}"
            fail(
                f"TERMINATE task's inputParameters.terminationStatus {shown}; it must be "
                f"one of {', '.join(TERMINATION_STATUSES)}",
                (*path, "inputParameters"),
            )
        if task.get("optional"):
            fail("a TERMINATE task cannot be optional", (*path, "optional"),
                 "Remove optional: true.")  # fmt: skip
    elif kind == "EVENT":
        need("sink", "a sink (for example conductor or sqs:queue)")
    elif kind == "SUB_WORKFLOW":
        _sub_workflow(at, report, index, fail)
    elif kind == "WAIT":
        if "duration" in params and "until" in params:
            fail("WAIT task takes duration or until, not both", (*path, "inputParameters"))
    elif kind == "JOIN":
        for i, ref in enumerate(task.get("joinOn") or ()):
            if ref not in refs:
                report(
                    "warning",
                    f"joinOn names {ref!r}, which is no task of this workflow",
                    (*path, "joinOn", i),
                    rule="unknown-join-ref",
                )
    if kind == "SIMPLE" and name and name not in index.specs("TaskDef") and "${" not in name:
        report(
            "warning",
            f"no TaskDef {name!r} in this project: Conductor will run the task "
            "with default settings (3 retries, 60 s apart, 1 h response timeout)",
            (*path, "name"),
            "Define the task under manifests/, or check the name.",
            rule="undefined-taskdef",
        )
    _references(at, params, report, refs)


def _sub_workflow(at: TaskAt, report: Reporter, index: Index,
                  fail: Callable[[str, RawPath, str | None], None]) -> None:  # fmt: skip
    path = at.path
    sub = at.task.get("subWorkflowParam")
    if sub is None:
        fail("SUB_WORKFLOW task needs subWorkflowParam.name", (*path,),
             "Add subWorkflowParam: {name: <workflow>}.")  # fmt: skip
        return
    inline = sub.get("workflowDefinition")
    if isinstance(inline, str) and not at.in_loop:
        report.refused_by(
            "3.15",
            "subWorkflowParam.workflowDefinition is an expression (a definition made at run "
            "time); Conductor 3.15 takes only an inline definition here",
            (*path, "subWorkflowParam", "workflowDefinition"),
        )
    if not sub.get("name"):
        if not at.in_loop:
            report.refused_by("3.15", "SUB_WORKFLOW task has no subWorkflowParam.name",
                              (*path, "subWorkflowParam"), "Add subWorkflowParam.name.")  # fmt: skip
        return
    if inline is not None or "${" in sub["name"]:
        return  # defined inline, or named at run time: nothing in the project to look for
    versions = index.versions("WorkflowDef").get(sub["name"])
    wanted = sub.get("version")
    if versions is None:
        report(
            "warning",
            f"sub-workflow {sub['name']!r} is not defined in this project",
            (*path, "subWorkflowParam", "name"),
            "Define it under manifests/, or check the name.",
            rule="undefined-sub-workflow",
        )
    elif wanted is not None and wanted not in versions:
        report(
            "warning",
            f"sub-workflow {sub['name']!r} version {wanted} is not defined in "
            f"this project (versions: {', '.join(map(str, sorted(versions)))})",
            (*path, "subWorkflowParam", "version"),
            rule="undefined-sub-workflow-version",
        )


def _references(at: TaskAt, params: Any, report: Reporter, refs: Mapping[str, TaskAt]) -> None:
    """``${ref.output...}`` must name the workflow or a task of this workflow (reference §3).

    The server checks top-level tasks only, reading the name up to the first '.': there a
    mistake is an error. Elsewhere the same mistake fails at run time (a warning), and a bracket
    (``${loop['iteration']}``) is read as at run time.
    """
    severity: Severity = "error" if at.top_level else "warning"
    rule = None if at.top_level else "expression-reference"
    for key, text in _strings(params, ("inputParameters",)):
        for expr in _EXPR.findall(text):
            if not expr:
                report(severity, "an empty expression ${} is refused by the server",
                       (*at.path, *key), "Write the expression, or remove ${}.", rule=rule)  # fmt: skip
                continue
            if _SPACE.search(expr):
                report(
                    severity,
                    f"expression ${{{expr}}} contains whitespace, which Conductor rejects",
                    (*at.path, *key),
                    rule=rule,
                )
                continue
            head = expr.split(".", 1)[0]
            if not at.top_level:
                head = head.split("[", 1)[0]
            if head == "workflow" or head in refs or _ENV_LIKE.match(expr) or not head:
                continue
            bracket = head.split("[", 1)[0]
            hint = (
                f"The server reads {head!r} as a task name here: write ${{{bracket}.…}} with dots."
                if bracket in refs
                else "Refer to ${workflow.input...} or to a taskReferenceName."
            )
            report(
                severity,
                f"${{{expr}}} names {head!r}, which is neither 'workflow' nor a task of this "
                f"workflow{did_you_mean(head, refs) if bracket not in refs else ''}",
                (*at.path, *key),
                hint,
                rule=rule,
            )


def _strings(value: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        return [(path, value)] if "${" in value else []
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _strings(v, (*path, k))]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _strings(v, (*path, i))]
    return []
