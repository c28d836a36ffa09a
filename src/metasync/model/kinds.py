"""The registry of resource kinds. Adding a kind (schedules, later) is one entry here."""

from __future__ import annotations

from dataclasses import dataclass

from metasync.model.conductor import ConductorModel, EventHandler, TaskDef, WorkflowDef


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    model: type[ConductorModel]
    #: identity includes the version (workflows) or the name alone
    versioned: bool
    #: apply order: lower first (task defs before workflows before event handlers)
    order: int


KINDS: dict[str, Kind] = {
    "TaskDef": Kind("TaskDef", TaskDef, versioned=False, order=0),
    "WorkflowDef": Kind("WorkflowDef", WorkflowDef, versioned=True, order=1),
    "EventHandler": Kind("EventHandler", EventHandler, versioned=False, order=2),
}
