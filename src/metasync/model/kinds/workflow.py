"""Workflow definitions: by name and version; sub-workflows written before their callers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from metasync.model.conductor import (
    CacheConfig,
    RateLimitConfig,
    SchemaDef,
    SubWorkflowParams,
    TaskDef,
    WorkflowDef,
    WorkflowTask,
)
from metasync.model.kinds.base import Endpoints, Kind, Reference
from metasync.model.kinds.workflow_checks import check_workflow
from metasync.model.tasks import walk_tasks


def references(spec: Mapping[str, Any]) -> Iterator[Reference]:
    """Its failure workflow, each task's task definition (looked up by the task's name), and
    each SUB_WORKFLOW's workflow (pinned, or the newest)."""
    failure = spec.get("failureWorkflow")
    if isinstance(failure, str) and failure:
        yield Reference("WorkflowDef", failure, None, "failureWorkflow")
    for at in walk_tasks(spec):
        if isinstance(at.task.get("name"), str):
            yield Reference("TaskDef", at.task["name"])
        call = at.task.get("subWorkflowParam")
        if (
            at.type == "SUB_WORKFLOW"
            and isinstance(call, Mapping)
            and isinstance(call.get("name"), str)
        ):
            version = call.get("version")
            yield Reference(
                "WorkflowDef", call["name"], version if isinstance(version, int) else None
            )


KIND = Kind(
    "WorkflowDef",
    WorkflowDef,
    versioned=True,
    order=1,
    folder="workflows",
    endpoints=Endpoints(
        list="/metadata/workflow",
        create="/metadata/workflow",
        update="/metadata/workflow",
        delete="/metadata/workflow/{name}/{version}",
        get="/metadata/workflow/{name}",
        update_batch=True,
        create_via_update=True,
    ),
    defaults={
        WorkflowDef: {
            "version": 1,
            "schemaVersion": 2,
            "restartable": True,
            "workflowStatusListenerEnabled": False,
            "timeoutPolicy": "ALERT_ONLY",
            "timeoutSeconds": 0,
            # oss
            "enforceSchema": True,
        },
        WorkflowTask: {
            "type": "SIMPLE",
            "startDelay": 0,
            "optional": False,
            "asyncComplete": False,
            # oss
            "permissive": False,
        },
        # oss: the server fills these inside the nested objects it knows
        SchemaDef: {"version": 1},
        RateLimitConfig: {"concurrentExecLimit": 0, "policy": "QUEUE"},
        CacheConfig: {"ttlInSecond": 0},
    },
    nested={
        "tasks": WorkflowTask,
        "decisionCases": WorkflowTask,
        "defaultCase": WorkflowTask,
        "forkTasks": WorkflowTask,
        "loopOver": WorkflowTask,
        "subWorkflowParam": SubWorkflowParams,
        # an inline sub-workflow: a whole definition, normalised as one (a string is an expression)
        "workflowDefinition": WorkflowDef,
        "taskDefinition": TaskDef,
        "inputSchema": SchemaDef,
        "outputSchema": SchemaDef,
        "rateLimitConfig": RateLimitConfig,
        "cacheConfig": CacheConfig,
    },
    free_form=frozenset(
        {
            "inputParameters",
            "outputParameters",
            "variables",
            "inputTemplate",
            "taskToDomain",
            "metadata",
            "data",
            "priority",
        }
    ),
    references=references,
    # a workflow PUT takes these from the body on both flavours: echo the live ones
    keep_on_update=("createTime", "createdBy"),
    calls_its_own=True,
    keyed_tasks=True,
    executions=True,
    validate="/metadata/workflow/validate",
    check=check_workflow,
)
