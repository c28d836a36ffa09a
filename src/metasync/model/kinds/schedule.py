"""Workflow schedules (conductor-oss 3.32 and Orkes: ``/api/scheduler/schedules``): by name;
written after the workflows they start, deleted before them. A schedule has no field for an owner,
so the project's ledger records the ones metasync wrote. Whether it is paused is live state, left to
the server's operators unless ``policy.manageLiveState`` says git decides (docs/servers.md)."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any, ClassVar, Literal

from pydantic import Field

from metasync.model.conductor import ConductorModel
from metasync.model.kinds.base import Endpoints, Kind, Reference
from metasync.model.kinds.checking import Index, Reporter
from metasync.model.paths import RawPath


class StartWorkflowRequest(ConductorModel):
    name: str = Field(min_length=1)
    version: int | None = None
    correlationId: str | None = None
    input: dict[str, Any] | None = None
    taskToDomain: dict[str, str] | None = None
    #: an inline definition to run instead of a registered one, kept as it is
    workflowDef: dict[str, Any] | None = None
    externalInputPayloadStoragePath: str | None = None
    priority: int | None = None
    createdBy: str | None = None
    idempotencyKey: str | None = None
    idempotencyStrategy: Literal["FAIL", "RETURN_EXISTING", "FAIL_ON_RUNNING"] | None = None


class CronSchedule(ConductorModel):
    cronExpression: str
    zoneId: str | None = None


class WorkflowSchedule(ConductorModel):
    SERVER_MANAGED: ClassVar[frozenset[str]] = frozenset(
        {"createTime", "updatedTime", "createdBy", "updatedBy", "nextRunTime"}
    )

    name: str = Field(min_length=1)
    description: str | None = None
    #: Spring's six fields: second minute hour day-of-month month day-of-week
    cronExpression: str | None = None
    zoneId: str | None = None
    #: several crons (each with its own zone); when given, they take the place of cronExpression
    cronSchedules: list[CronSchedule] | None = None
    startWorkflowRequest: StartWorkflowRequest
    runCatchupScheduleInstances: bool | None = None
    scheduleStartTime: int | None = None
    scheduleEndTime: int | None = None
    #: live state (see the module's docstring)
    paused: bool | None = None
    pausedReason: str | None = None
    createTime: int | None = None
    updatedTime: int | None = None
    createdBy: str | None = None
    updatedBy: str | None = None
    nextRunTime: int | None = None


def references(spec: Mapping[str, Any]) -> Iterator[Reference]:
    """The workflow it starts (pinned, or the newest)."""
    start = spec.get("startWorkflowRequest")
    if isinstance(start, Mapping) and isinstance(start.get("name"), str):
        version = start.get("version")
        yield Reference("WorkflowDef", start["name"], version if isinstance(version, int) else None)


#: a zone Java's ZoneId reads besides the IANA names: Z, UTC/GMT/UT with or without an offset
_OFFSET_ZONE = re.compile(r"^(Z|(UTC|GMT|UT)?([+-]\d{1,2}(:?\d{2}(:?\d{2})?)?)?)$")


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check(spec: Mapping[str, Any], report: Reporter, index: Index) -> None:
    crons: list[tuple[Any, RawPath]] = [(spec.get("cronExpression"), ("cronExpression",))]
    crons += [
        (c.get("cronExpression"), ("cronSchedules", i, "cronExpression"))
        for i, c in enumerate(spec.get("cronSchedules") or ())
    ]
    if not any(cron for cron, _ in crons):
        report("warning", "the schedule has no cronExpression: the server stores it, and it never "
               "runs", ("name",), "Add a cronExpression, e.g. '0 0 * * * ?' (every hour).",
               rule="schedule-no-cron")  # fmt: skip
    for cron, path in crons:
        if isinstance(cron, str) and len(cron.split()) != 6:
            report("warning", f"cronExpression {cron!r} has {len(cron.split())} field(s), not 6: "
                   "the server stores it, and it never runs", path,
                   "Use Spring's six fields: second minute hour day-of-month month day-of-week, "
                   "e.g. '0 0 * * * ?'.", rule="cron-fields")  # fmt: skip
    zones: list[tuple[Any, RawPath]] = [(spec.get("zoneId"), ("zoneId",))]
    zones += [(c.get("zoneId"), ("cronSchedules", i, "zoneId"))
              for i, c in enumerate(spec.get("cronSchedules") or ())]  # fmt: skip
    for zone, path in zones:
        if (
            isinstance(zone, str)
            and _zones()
            and zone not in _zones()
            and not _OFFSET_ZONE.match(zone)
        ):
            report("error", f"zoneId {zone!r} is not a time zone the server knows (it answers 500)",
                   path, "Use a zone name such as UTC or Europe/Berlin.")  # fmt: skip
    if "/" in spec["name"]:
        report("warning", f"schedule name {spec['name']!r} contains '/': the server creates it, "
               "but can then neither read nor delete it", ("name",),
               "Use letters, digits, '_', '-' and '.'.", rule="schedule-name-slash")  # fmt: skip
    target = (spec.get("startWorkflowRequest") or {}).get("name")
    if (
        isinstance(target, str)
        and "${" not in target
        and target not in index.versions("WorkflowDef")
    ):
        report("warning", f"startWorkflowRequest names {target!r}, which is not defined in this "
               "project", ("startWorkflowRequest", "name"),
               rule="undefined-schedule-workflow")  # fmt: skip


KIND = Kind(
    "WorkflowSchedule",
    WorkflowSchedule,
    versioned=False,
    order=3,
    folder="schedules",
    endpoints=Endpoints(
        list="/scheduler/schedules",
        create="/scheduler/schedules",
        update="/scheduler/schedules",
        update_method="POST",
        create_is_upsert=True,
        delete="/scheduler/schedules/{name}",
        get="/scheduler/schedules/{name}",
        optional=True,
    ),
    owned_by="ledger",
    ledger_key="workflowSchedules",
    defaults={
        WorkflowSchedule: {"zoneId": "UTC", "paused": False, "runCatchupScheduleInstances": False},
        StartWorkflowRequest: {"priority": 0},
        CronSchedule: {"zoneId": "UTC"},
    },
    nested={"startWorkflowRequest": StartWorkflowRequest, "cronSchedules": CronSchedule},
    free_form=frozenset({"input", "taskToDomain", "workflowDef"}),
    references=references,
    live_state=("paused", "pausedReason"),
    flavours=("oss",),
    check=check,
)
