"""Offline checks: what the server would reject (reference §3) and what is certainly wrong.

Errors are what a Conductor server refuses to register (or registers in a way nobody wants);
warnings are likely mistakes the server accepts, such as a SIMPLE task with no task definition
anywhere in the project, or a sub-workflow that the project does not define.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from metasync.errors import Location, Problem, Severity, did_you_mean
from metasync.model.kinds import KINDS
from metasync.model.paths import RawPath, display_path
from metasync.model.resource import Resource
from metasync.model.tasks import SYSTEM_TASK_TYPES, TaskAt, walk_tasks

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
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


class _Reporter:
    def __init__(self, resource: Resource, problems: list[Problem]):
        self.resource = resource
        self.problems = problems

    def __call__(
        self, severity: Severity, message: str, path: RawPath, hint: str | None = None
    ) -> None:
        display = display_path(self.resource.spec, path)
        origin = self.resource.origin
        location = (
            origin.locate(path, display) if origin else Location(self.resource.title, None, display)
        )
        self.problems.append(Problem(message, location, hint, severity))


def check_resources(resources: Sequence[Resource]) -> list[Problem]:
    """Every problem across the project's resources (one environment's rendering)."""
    index = _Index(resources)
    problems: list[Problem] = []
    for resource in resources:
        report = _Reporter(resource, problems)
        _common(resource, report)
        check = _CHECKS.get(resource.kind)
        if check is not None:
            check(resource.spec, report, index)
    return problems


class _Index:
    def __init__(self, resources: Sequence[Resource]):
        self.taskdefs = {r.name: r.spec for r in resources if r.kind == "TaskDef"}
        self.workflows: dict[str, set[int]] = {}
        for r in resources:
            if r.kind == "WorkflowDef":
                self.workflows.setdefault(r.name, set()).add(r.version or 1)


def _common(resource: Resource, report: _Reporter) -> None:
    managed = KINDS[resource.kind].model.SERVER_MANAGED
    for key in resource.spec:
        if key in managed:
            report(
                "warning",
                f"{key} is written by the server or by metasync; the value here is ignored",
                (key,),
                f"Remove {key}.",
            )
    if resource.kind in ("TaskDef", "WorkflowDef"):
        email = resource.spec.get("ownerEmail")
        if email is None:
            report(
                "warning",
                "ownerEmail is not set: Conductor 3.15 rejects the definition unless "
                "the server runs with conductor.app.ownerEmailMandatory=false",
                ("name",),
                "Set ownerEmail, for example from a variable: ownerEmail: ((vars.owner_email)).",
            )
        elif not _EMAIL.match(email):
            report(
                "error",
                f"ownerEmail {email!r} is not an e-mail address (Conductor 3.15 rejects it)",
                ("ownerEmail",),
                "Use an address like team@example.com.",
            )


def _taskdef(spec: Mapping[str, Any], report: _Reporter, index: _Index) -> None:
    timeout = spec.get("timeoutSeconds", 0)
    response = spec.get("responseTimeoutSeconds", 3600)
    if timeout > 0 and response > timeout:
        given = "" if "responseTimeoutSeconds" in spec else " (its default)"
        report(
            "error",
            f"responseTimeoutSeconds {response}{given} exceeds timeoutSeconds {timeout}; "
            "the server requires responseTimeoutSeconds <= timeoutSeconds",
            ("responseTimeoutSeconds",)
            if "responseTimeoutSeconds" in spec
            else ("timeoutSeconds",),
            f"Set responseTimeoutSeconds to at most {timeout}, or raise timeoutSeconds.",
        )
    total = spec.get("totalTimeoutSeconds", 0)
    if total > 0 and timeout > total:
        report(
            "error",
            f"timeoutSeconds {timeout} exceeds totalTimeoutSeconds {total}",
            ("timeoutSeconds",),
            "Lower timeoutSeconds or raise totalTimeoutSeconds.",
        )


def _workflow(spec: Mapping[str, Any], report: _Reporter, index: _Index) -> None:
    if ":" in spec["name"]:
        report(
            "error",
            f"workflow name {spec['name']!r} contains ':', which Conductor 3.15 rejects",
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
    if failure and "${" not in failure and failure not in index.workflows:
        report(
            "warning",
            f"failureWorkflow {failure!r} is not defined in this project",
            ("failureWorkflow",),
            "Define it under manifests/, or check the name.",
        )

    tasks = list(walk_tasks(spec))
    first_seen: dict[str, TaskAt] = {}
    for at in tasks:
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


def _task(at: TaskAt, report: _Reporter, index: _Index, refs: Mapping[str, TaskAt]) -> None:
    task, path, kind = at.task, at.path, at.type
    params = task.get("inputParameters") or {}

    def need(field: str, what: str | None = None) -> bool:
        if task.get(field) in (None, "", [], {}):
            report(
                "error",
                f"{kind} task needs {what or field}",
                (*path,),
                f"Add `{field}:` to task {at.ref!r}.",
            )
            return False
        return True

    if kind not in SYSTEM_TASK_TYPES:
        suggestion = did_you_mean(kind, SYSTEM_TASK_TYPES)
        if suggestion:
            report(
                "warning",
                f"type {kind!r} is not a Conductor system task{suggestion} "
                "(an unknown type runs as a worker task and waits for a poller)",
                (*path, "type"),
                "Task types are upper case.",
            )
    if kind == "SWITCH":
        need("evaluatorType")
        need("expression", "an expression (the value or script that picks the case)")
        need("decisionCases", "at least one case in decisionCases")
    elif kind == "DECISION":
        if not task.get("caseValueParam") and not task.get("caseExpression"):
            report(
                "error",
                "DECISION task needs caseValueParam or caseExpression",
                (*path,),
                "DECISION is deprecated: prefer SWITCH with evaluatorType and expression.",
            )
        need("decisionCases", "at least one case in decisionCases")
    elif kind == "DO_WHILE":
        need("loopCondition")
        need("loopOver", "at least one task in loopOver")
    elif kind == "DYNAMIC":
        need("dynamicTaskNameParam")
    elif kind == "FORK_JOIN":
        need("forkTasks", "at least one branch in forkTasks")
    elif kind == "FORK_JOIN_DYNAMIC":
        legacy = task.get("dynamicForkJoinTasksParam")
        modern = task.get("dynamicForkTasksParam"), task.get("dynamicForkTasksInputParamName")
        if legacy and any(modern):
            report(
                "error",
                "FORK_JOIN_DYNAMIC takes dynamicForkJoinTasksParam alone, or "
                "dynamicForkTasksParam with dynamicForkTasksInputParamName, not both",
                (*path,),
            )
        elif not legacy and not all(modern):
            report(
                "error",
                "FORK_JOIN_DYNAMIC task needs dynamicForkTasksParam and "
                "dynamicForkTasksInputParamName",
                (*path,),
            )
    elif kind in _TEMPLATED_INPUT:
        key = _TEMPLATED_INPUT[kind]
        template = (index.taskdefs.get(task["name"]) or {}).get("inputTemplate") or {}
        if key not in params and key not in template:
            report(
                "error",
                f"{kind} task needs inputParameters.{key} (or a TaskDef named "
                f"{task['name']!r} whose inputTemplate has {key})",
                (*path, "inputParameters"),
                f"Add `{key}:` under inputParameters.",
            )
    elif kind == "TERMINATE":
        status = params.get("terminationStatus")
        if status not in TERMINATION_STATUSES:
            shown = "is missing" if status is None else f"is {status!r}"
            report(
                "error",
                f"TERMINATE task's inputParameters.terminationStatus {shown}; it must be "
                f"one of {', '.join(TERMINATION_STATUSES)}",
                (*path, "inputParameters"),
            )
        if task.get("optional"):
            report(
                "error",
                "a TERMINATE task cannot be optional",
                (*path, "optional"),
                "Remove optional: true.",
            )
    elif kind == "EVENT":
        need("sink", "a sink (for example conductor or sqs:queue)")
    elif kind == "SUB_WORKFLOW":
        sub = task.get("subWorkflowParam")
        if not sub:
            report(
                "error",
                "SUB_WORKFLOW task needs subWorkflowParam.name",
                (*path,),
                "Add subWorkflowParam: {name: <workflow>}.",
            )
        elif "${" not in sub["name"]:
            versions = index.workflows.get(sub["name"])
            wanted = sub.get("version")
            if versions is None:
                report(
                    "warning",
                    f"sub-workflow {sub['name']!r} is not defined in this project",
                    (*path, "subWorkflowParam", "name"),
                    "Define it under manifests/, or check the name.",
                )
            elif wanted is not None and wanted not in versions:
                report(
                    "warning",
                    f"sub-workflow {sub['name']!r} version {wanted} is not defined in "
                    f"this project (versions: {', '.join(map(str, sorted(versions)))})",
                    (*path, "subWorkflowParam", "version"),
                )
    elif kind == "WAIT":
        if "duration" in params and "until" in params:
            report(
                "error", "WAIT task takes duration or until, not both", (*path, "inputParameters")
            )
    elif kind == "JOIN":
        for i, ref in enumerate(task.get("joinOn") or ()):
            if ref not in refs:
                report(
                    "warning",
                    f"joinOn names {ref!r}, which is no task of this workflow",
                    (*path, "joinOn", i),
                )
    if kind == "SIMPLE" and task["name"] not in index.taskdefs and "${" not in task["name"]:
        report(
            "warning",
            f"no TaskDef {task['name']!r} in this project: Conductor will run the task "
            "with default settings (3 retries, 60 s apart, 1 h response timeout)",
            (*path, "name"),
            "Define the task under manifests/, or check the name.",
        )
    _references(at, params, report, refs)


def _references(at: TaskAt, params: Any, report: _Reporter, refs: Mapping[str, TaskAt]) -> None:
    """``${ref.output...}`` must name the workflow or a task of this workflow (reference §3)."""
    for key, text in _strings(params, ("inputParameters",)):
        for expr in _EXPR.findall(text):
            if _SPACE.search(expr):
                report(
                    "error",
                    f"expression ${{{expr}}} contains whitespace, which Conductor rejects",
                    (*at.path, *key),
                )
                continue
            head = expr.split(".", 1)[0]
            if head == "workflow" or head in refs or _ENV_LIKE.match(expr) or not head:
                continue
            # the server checks top-level tasks only; elsewhere the same mistake fails at run time
            report(
                "error" if at.top_level else "warning",
                f"${{{expr}}} names {head!r}, which is neither 'workflow' nor a task of this "
                f"workflow{did_you_mean(head, refs)}",
                (*at.path, *key),
                "Refer to ${workflow.input...} or to a taskReferenceName.",
            )


def _strings(value: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        return [(path, value)] if "${" in value else []
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _strings(v, (*path, k))]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _strings(v, (*path, i))]
    return []


def _event_handler(spec: Mapping[str, Any], report: _Reporter, index: _Index) -> None:
    if "active" not in spec:
        report(
            "warning",
            "active is not set: Conductor registers the handler inactive",
            ("name",),
            "Set active: true (or active: false to say it on purpose).",
        )
    if not spec.get("actions"):
        report(
            "error",
            "the event handler has no actions; Conductor requires at least one",
            ("actions",),
        )
    for i, action in enumerate(spec.get("actions") or ()):
        name = action["action"]
        if not action.get(name) and name in ("start_workflow", "complete_task", "fail_task"):
            report(
                "error",
                f"action {name} needs its details under `{name}:`",
                ("actions", i),
                f"Add `{name}: {{...}}` to this action.",
            )
        start = action.get("start_workflow") or {}
        target = start.get("name")
        if (
            name == "start_workflow"
            and isinstance(target, str)
            and "${" not in target
            and target not in index.workflows
        ):
            report(
                "warning",
                f"start_workflow names {target!r}, which is not defined in this project",
                ("actions", i, "start_workflow", "name"),
            )


_CHECKS: dict[str, Callable[[Mapping[str, Any], _Reporter, _Index], None]] = {
    "TaskDef": _taskdef,
    "WorkflowDef": _workflow,
    "EventHandler": _event_handler,
}
