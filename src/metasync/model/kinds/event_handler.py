"""Event handlers: by name; written after the workflows they start. They have no field for an
owner, so the project's ledger records the ones metasync wrote."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from metasync.model.conductor import Action, EventHandler, StartWorkflow, TaskDetails
from metasync.model.kinds.base import Endpoints, Kind, Reference
from metasync.model.kinds.checking import Index, Reporter

#: event handler actions only conductor-oss has (3.15 cannot read the request: 500)
_OSS_ACTIONS = frozenset({"terminate_workflow", "update_workflow_variables", "start_agent"})


def references(spec: Mapping[str, Any]) -> Iterator[Reference]:
    """The workflows its start_workflow actions start (pinned, or the newest)."""
    for action in spec.get("actions") or ():
        if not isinstance(action, Mapping) or action.get("action") != "start_workflow":
            continue
        start = action.get("start_workflow")
        if isinstance(start, Mapping) and isinstance(start.get("name"), str):
            version = start.get("version")
            yield Reference(
                "WorkflowDef", start["name"], version if isinstance(version, int) else None
            )


def check(spec: Mapping[str, Any], report: Reporter, index: Index) -> None:
    if "active" not in spec:
        report(
            "warning",
            "active is not set: Conductor registers the handler inactive",
            ("name",),
            "Set active: true (or active: false to say it on purpose).",
            rule="handler-inactive",
        )
    if not spec.get("actions"):
        report(
            "error",
            "the event handler has no actions; Conductor requires at least one",
            ("actions",),
        )
    for i, action in enumerate(spec.get("actions") or ()):
        name = action["action"]
        if name in _OSS_ACTIONS:
            report.refused_by("3.15", f"action {name} is conductor-oss's", ("actions", i, "action"),
                              "Conductor 3.15 knows start_workflow, complete_task and fail_task.")  # fmt: skip
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
            and target not in index.versions("WorkflowDef")
        ):
            report(
                "warning",
                f"start_workflow names {target!r}, which is not defined in this project",
                ("actions", i, "start_workflow", "name"),
                rule="undefined-handler-workflow",
            )


KIND = Kind(
    "EventHandler",
    EventHandler,
    versioned=False,
    order=2,
    folder="event-handlers",
    endpoints=Endpoints(list="/event", create="/event", update="/event", delete="/event/{name}"),
    owned_by="ledger",
    ledger_key="eventHandlers",
    defaults={EventHandler: {"active": False}, Action: {"expandInlineJSON": False}},
    nested={
        "actions": Action,
        "start_workflow": StartWorkflow,
        "complete_task": TaskDetails,
        "fail_task": TaskDetails,
    },
    free_form=frozenset(
        {
            "input",
            "output",
            "taskToDomain",
            "inputMessage",
            "outputMessage",
            "terminate_workflow",
            "update_workflow_variables",
            "start_agent",
        }
    ),
    references=references,
    check=check,
)
