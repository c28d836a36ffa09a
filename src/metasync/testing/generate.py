"""A starting WorkflowTest from a real execution: its input, what its workers returned (as mocks,
one per attempt), and the path it took (as expectations). The quickest way to pin today's
behaviour before changing a workflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metasync.conductor.client import ConductorClient
from metasync.errors import ConfigError
from metasync.testing.expect import base_ref, switch_case, task_runs
from metasync.testing.request import OUTSIDE, OUTSIDE_PREFIXES
from metasync.testing.runner import TERMINAL, system_task

Json = dict[str, Any]


def generate(client: ConductorClient, execution_id: str, name: str) -> Json:
    """The test document (a manifest: apiVersion, kind, metadata, spec)."""
    execution = client.execution(execution_id)
    if execution is None:
        raise ConfigError(
            f"{client.label} has no execution {execution_id!r}",
            hint="Pass the id of an execution of that environment (the Conductor UI shows it; "
            "executions are removed after the server's retention).",
        )
    if str(execution.get("status")) not in TERMINAL:
        raise ConfigError(
            f"execution {execution_id} is still {execution.get('status')}: its path is not known "
            "yet", hint="Generate the test once it has ended.",
        )  # fmt: skip
    mocks: Json = {}
    _mocks(client, execution, mocks, "")
    runs = task_runs(execution)
    expect: Json = {"status": execution.get("status")}
    if execution.get("output"):
        expect["output"] = execution["output"]
    sequence: list[str] = []
    for run in runs:
        if not sequence or sequence[-1] != run.base:
            sequence.append(run.base)
    expect["tasks"] = sequence
    paths = {r.ref: switch_case(r) for r in runs if switch_case(r) is not None}
    if paths:
        expect["path"] = paths
    loops = {
        r.ref: r.output["iteration"]
        for r in runs
        if r.type == "DO_WHILE" and "iteration" in r.output
    }
    if loops:
        expect["iterations"] = loops
    if execution.get("reasonForIncompletion"):
        expect["reason"] = execution["reasonForIncompletion"]
    spec: Json = {
        "workflow": execution.get("workflowName"),
        "version": execution.get("workflowVersion"),
        "input": execution.get("input") or {},
    }
    if mocks:
        spec["mocks"] = mocks
    spec["expect"] = expect
    return {"apiVersion": "metasync/v1", "kind": "WorkflowTest", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


def _mocks(client: ConductorClient, execution: Mapping[str, Any], mocks: Json, prefix: str) -> None:
    """What each worker (and each task that reached outside) returned, attempt by attempt; a
    sub-workflow's tasks under ``<ref>/``."""
    tasks = sorted(execution.get("tasks") or (), key=lambda t: int(t.get("seq") or 0))
    for task in tasks:
        ref, kind = str(task.get("referenceTaskName")), str(task.get("taskType"))
        if kind == "SUB_WORKFLOW" and task.get("subWorkflowId"):
            child = client.execution(str(task["subWorkflowId"]))
            if child is not None:
                _mocks(client, child, mocks, f"{prefix}{base_ref(ref)}/")
            continue
        outside = kind in OUTSIDE or kind.startswith(OUTSIDE_PREFIXES)
        if system_task(kind) and not outside:
            continue
        status = str(task.get("status"))
        if status not in ("COMPLETED", "FAILED", "FAILED_WITH_TERMINAL_ERROR"):
            continue  # never answered (canceled, timed out): nothing to mock
        mock: Json = {"output": task.get("outputData") or {}}
        if status != "COMPLETED":
            mock = {"status": status, **mock}
        mocks.setdefault(prefix + ref, []).append(mock)
    for ref, listed in list(mocks.items()):
        if ref.startswith(prefix) and len(listed) == 1:
            mocks[ref] = listed[0]
