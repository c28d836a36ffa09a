"""Event handlers: by name; written after the workflows they start. They have no field for an
owner, so the project's ledger records the ones metasync wrote."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from metasync.model.conductor import Action, EventHandler, StartWorkflow, TaskDetails
from metasync.model.kinds.base import Endpoints, Kind, Reference


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
)
