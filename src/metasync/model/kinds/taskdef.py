"""Task definitions: by name; written first, since workflows' tasks run them."""

from __future__ import annotations

from metasync.model.conductor import SchemaDef, TaskDef
from metasync.model.kinds.base import Endpoints, Kind

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
)
