"""Task definitions: by name; written first, since workflows' tasks run them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metasync.model.conductor import SchemaDef, TaskDef
from metasync.model.kinds.base import Endpoints, Kind
from metasync.model.kinds.checking import Index, Reporter, owner_email


def check(spec: Mapping[str, Any], report: Reporter, index: Index) -> None:
    owner_email(spec, report)
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
    if total > 0 and timeout > total:  # 3.15 drops totalTimeoutSeconds (an unknown field there)
        report.refused_by(
            "oss",
            f"timeoutSeconds {timeout} exceeds totalTimeoutSeconds {total}",
            ("timeoutSeconds",),
            "Lower timeoutSeconds or raise totalTimeoutSeconds.",
        )


KIND = Kind(
    "TaskDef",
    TaskDef,
    versioned=False,
    order=0,
    folder="taskdefs",
    endpoints=Endpoints(
        list="/metadata/taskdefs",
        create="/metadata/taskdefs",
        update="/metadata/taskdefs",
        delete="/metadata/taskdefs/{name}",
        get="/metadata/taskdefs/{name}",
        create_batch=True,
        create_is_upsert=True,
    ),
    defaults={
        TaskDef: {
            "retryCount": 3,
            "timeoutSeconds": 0,
            "timeoutPolicy": "TIME_OUT_WF",
            "retryLogic": "FIXED",
            "retryDelaySeconds": 60,
            "responseTimeoutSeconds": 3600,
            "rateLimitPerFrequency": 0,
            "rateLimitFrequencyInSeconds": 1,
            "backoffScaleFactor": 1,
            # oss
            "maxRetryDelaySeconds": 0,
            "backoffJitterMs": 0,
            "totalTimeoutSeconds": 0,
            "taskStatusListenerEnabled": True,
            "enforceSchema": False,
        },
        SchemaDef: {"version": 1},
    },
    nested={"inputSchema": SchemaDef, "outputSchema": SchemaDef},
    free_form=frozenset({"inputTemplate", "data"}),
    # an in-place update (a PUT on 3.15) takes these from the body: echo the live ones
    keep_on_update=("createTime", "createdBy"),
    check=check,
)
