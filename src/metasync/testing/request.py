"""The request a test sends: the workflow as git renders it, inlined, and its mocks by reference.

Nothing is registered on the server. The workflow goes inline (``workflowDef``) under a name of
its own (``metasync_test_<name>``: a test's execution is never taken for one of the real
workflow's, which an apply counts before it deletes a version), every task definition git has goes inline in the tasks that use it
(``taskDefinition``: git's retries, not the server's), and so does every sub-workflow git has
(``subWorkflowParam.workflowDefinition``), each with a test request of its own for the mocks of its
tasks (the server feeds a sub-workflow's mocks only through ``subWorkflowTestRequest``).

A test never starts anything else: its workflow's ``failureWorkflow`` and status listener are left
out. It never reaches outside the server: a task that would (HTTP, EVENT, KAFKA_PUBLISH, ...) is
sent as a stand-in worker task of the same reference and input (``metasync_mock_<type>``), which
only its mock completes. Mocking the real task is not enough: the server's system-task worker
races the test's mocks, and on both flavours it sometimes sends the request first.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from metasync.errors import did_you_mean
from metasync.model.resource import Resource
from metasync.model.tasks import walk_tasks
from metasync.model.workflow_test import Mock, WorkflowTestSpec, mock_list

#: task types that reach outside the server (or start workflows): sent as stand-ins
OUTSIDE = frozenset({"HTTP", "EVENT", "KAFKA_PUBLISH", "JDBC", "CALL_MCP_TOOL", "LIST_MCP_TOOLS",
                     "AGENT", "START_WORKFLOW"})  # fmt: skip
OUTSIDE_PREFIXES = ("LLM_", "GENERATE_")

Json = dict[str, Any]


STAND_IN = "metasync_mock_"
#: a mock for no task: the server drives a test (deciding, feeding sub-workflows) only while mocks
#: are left, so with none left it would stop while a sub-workflow's parent still waits
KEEP_GOING = "metasync__no_such_task"


def test_name(name: str) -> str:
    return f"metasync_test_{name}"


def stood_in(task_type: str) -> str | None:
    """The type a stand-in replaces (``HTTP`` for ``metasync_mock_http``); None for others."""
    return task_type.removeprefix(STAND_IN).upper() if task_type.startswith(STAND_IN) else None


def build(spec: WorkflowTestSpec, workflow: Resource, workflows: Sequence[Resource],
          taskdefs: Mapping[str, Resource], run: str) -> tuple[Json, list[str]]:  # fmt: skip
    """The ``POST /api/workflow/test`` request, and what forbids running it (a JOIN that would
    wait for ever)."""
    by_name: dict[tuple[str, int | None], Resource] = {}
    for w in sorted(workflows, key=lambda w: w.version or 0):
        by_name[w.name, w.version] = w
        by_name[w.name, None] = w  # no version named: the newest
    refused: list[str] = []
    request = _level(workflow.spec, spec.mocks, by_name=by_name, taskdefs=taskdefs,
                     iterations=spec.maxIterations, refused=refused, prefix="",
                     seen=frozenset({workflow.name}))  # fmt: skip
    request["input"] = spec.input
    # how the runner finds the execution when the server is slow to answer (runner._start)
    request["correlationId"] = spec.correlationId or f"metasync-test-{run}-{uuid.uuid4().hex[:8]}"
    return request, refused


def _level(definition: Mapping[str, Any], mocks: Mapping[str, Mock | list[Mock]], *,
           by_name: Mapping[tuple[str, int | None], Resource], taskdefs: Mapping[str, Resource],
           iterations: int, refused: list[str], prefix: str,
           seen: frozenset[str]) -> Json:  # fmt: skip
    inline: Json = copy.deepcopy(dict(definition))
    name = str(definition.get("name"))
    inline["name"] = test_name(name)
    # a failing test must not start the real failure workflow, nor tell a status listener
    inline.pop("failureWorkflow", None)
    inline["workflowStatusListenerEnabled"] = False
    here = {
        ref: m
        for ref, m in mocks.items()
        if ref.startswith(prefix) and "/" not in ref[len(prefix) :]
    }
    local = {ref[len(prefix) :]: m for ref, m in here.items()}
    refs = [str(at.task.get("taskReferenceName") or "") for at in walk_tasks(inline)]
    in_loop = {str(at.task.get("taskReferenceName")) for at in walk_tasks(inline) if at.in_loop}
    subs: Json = {}
    for at in walk_tasks(inline):
        task = at.task
        assert isinstance(task, dict)
        ref = str(task.get("taskReferenceName") or "")
        kind = str(task.get("type") or "SIMPLE")
        taskdef = taskdefs.get(str(task.get("name") or ""))
        if taskdef is not None and "taskDefinition" not in task:
            task["taskDefinition"] = copy.deepcopy(dict(taskdef.spec))
        if kind in OUTSIDE or kind.startswith(OUTSIDE_PREFIXES):
            stand_in = STAND_IN + kind.lower()
            definition_of = dict(task.get("taskDefinition") or {"retryCount": 0})
            task["type"] = "SIMPLE"
            task["name"] = stand_in
            task["taskDefinition"] = {
                **definition_of, "name": stand_in, "ownerEmail": "metasync@example.com",
                "timeoutSeconds": 0, "responseTimeoutSeconds": 3600, "pollTimeoutSeconds": 0,
            }  # fmt: skip
        if kind == "JOIN":
            for waited in task.get("joinOn") or ():
                if str(waited) not in refs:
                    refused.append(
                        f"{prefix}{ref} (JOIN) waits for {waited!r}, which no task of {name} "
                        f"has: it would wait for ever{did_you_mean(str(waited), refs)}"
                    )
        params = task.get("subWorkflowParam")
        if kind == "SUB_WORKFLOW" and isinstance(params, dict):
            version = params.get("version")
            sub = by_name.get(
                (str(params.get("name") or ""), version if isinstance(version, int) else None)
            )
            if sub is not None and sub.name not in seen and ref not in local:
                request = _level(sub.spec, mocks, by_name=by_name, taskdefs=taskdefs,
                                 iterations=iterations, refused=refused, prefix=f"{prefix}{ref}/",
                                 seen=seen | {sub.name})  # fmt: skip
                params["name"] = request["name"]
                params["version"] = sub.spec.get("version", 1)
                params["workflowDefinition"] = request.pop("workflowDef")
                subs[ref] = request
    return {
        "name": inline["name"],
        "version": inline.get("version", 1),
        "workflowDef": inline,
        "taskRefToMockOutput": {**_mocks(local, in_loop, iterations), KEEP_GOING: [{}]},
        "subWorkflowTestRequest": subs,
    }


def _mocks(local: Mapping[str, Mock | list[Mock]], in_loop: set[str],
           iterations: int) -> dict[str, list[Json]]:  # fmt: skip
    """Mocks by the reference the server gives each task: a task in a loop is ``ref__<n>``, so a
    mock by plain reference covers every iteration (one named ``ref__<n>`` only its own)."""
    found: dict[str, list[Json]] = {}
    for ref, mocks in local.items():
        listed = [m.model_dump() for m in mock_list(mocks)]
        if ref in in_loop:
            for n in range(1, iterations + 1):
                found.setdefault(f"{ref}__{n}", copy.deepcopy(listed))
        else:
            found[ref] = listed
    for ref, mocks in local.items():  # one iteration's own mock wins over the plain reference
        if _base(ref) != ref:
            found[ref] = [m.model_dump() for m in mock_list(mocks)]
    return found


def _base(ref: str) -> str:
    head, sep, tail = ref.rpartition("__")
    return head if sep and tail.isdigit() else ref
