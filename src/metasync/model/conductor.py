"""Pydantic models of Conductor's metadata objects, field for field (reference/conductor-api.md §2).

Field names are Conductor's own (camelCase, and snake_case where Conductor uses it, as in event
handler actions), so a manifest's ``spec`` is exactly the JSON the server takes. Every field is
optional unless the server requires it, and no default is filled here: defaults depend on the server
flavour and belong to normalisation. The models are strict: unknown fields and wrong types are
errors. ``OSS_ONLY`` on each model names the fields only conductor-oss >= 3.21 knows; a 3.15 server
silently drops them.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class ConductorModel(BaseModel):
    # built on first use: a plan served from the cache validates no manifest
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    #: fields only conductor-oss (>= 3.21) knows; 3.15 drops them on write
    OSS_ONLY: ClassVar[frozenset[str]] = frozenset()
    #: fields the server writes itself (reference §2.6); a manifest should not set them
    SERVER_MANAGED: ClassVar[frozenset[str]] = frozenset()


_AUDIT = frozenset({"createTime", "updateTime", "createdBy", "updatedBy"})

TimeoutPolicyTask = Literal["RETRY", "TIME_OUT_WF", "ALERT_ONLY"]
RetryLogic = Literal["FIXED", "EXPONENTIAL_BACKOFF", "LINEAR_BACKOFF"]


class SchemaDef(ConductorModel):
    SERVER_MANAGED = _AUDIT | {"ownerApp"}

    name: str
    version: int | None = None
    type: Literal["JSON", "AVRO", "PROTOBUF"] | None = None
    data: dict[str, Any] | None = None
    externalRef: str | None = None
    # conductor-oss writes these (as 0) into every schema reference
    ownerApp: str | None = None
    createdBy: str | None = None
    updatedBy: str | None = None
    createTime: int | None = None
    updateTime: int | None = None


class CacheConfig(ConductorModel):
    key: str | None = None
    ttlInSecond: int | None = None


class RateLimitConfig(ConductorModel):
    rateLimitKey: str | None = None
    concurrentExecLimit: int | None = None
    policy: Literal["QUEUE", "REJECT"] | None = None


class TaskDef(ConductorModel):
    OSS_ONLY = frozenset(
        {
            "runtimeMetadata",
            "maxRetryDelaySeconds",
            "backoffJitterMs",
            "baseType",
            "totalTimeoutSeconds",
            "taskStatusListenerEnabled",
            "inputSchema",
            "outputSchema",
            "enforceSchema",
        }
    )
    SERVER_MANAGED = _AUDIT | {"ownerApp", "accessPolicy"}

    name: str = Field(min_length=1)
    description: str | None = None
    retryCount: int | None = Field(None, ge=0)
    timeoutSeconds: int | None = Field(None, ge=0)
    inputKeys: list[str] | None = None
    outputKeys: list[str] | None = None
    timeoutPolicy: TimeoutPolicyTask | None = None
    retryLogic: RetryLogic | None = None
    retryDelaySeconds: int | None = Field(None, ge=0)
    responseTimeoutSeconds: int | None = Field(None, ge=1)
    concurrentExecLimit: int | None = None
    inputTemplate: dict[str, Any] | None = None
    rateLimitPerFrequency: int | None = None
    rateLimitFrequencyInSeconds: int | None = None
    isolationGroupId: str | None = None
    executionNameSpace: str | None = None
    ownerEmail: str | None = None
    pollTimeoutSeconds: int | None = Field(None, ge=0)
    backoffScaleFactor: int | None = Field(None, ge=1)
    accessPolicy: dict[str, str] | None = None
    ownerApp: str | None = None
    createdBy: str | None = None
    updatedBy: str | None = None
    createTime: int | None = None
    updateTime: int | None = None
    # conductor-oss >= 3.21
    runtimeMetadata: list[str] | None = None
    maxRetryDelaySeconds: int | None = Field(None, ge=0)
    backoffJitterMs: int | None = Field(None, ge=0)
    baseType: str | None = None
    totalTimeoutSeconds: int | None = Field(None, ge=0)
    taskStatusListenerEnabled: bool | None = None
    inputSchema: SchemaDef | None = None
    outputSchema: SchemaDef | None = None
    enforceSchema: bool | None = None


class InlineTaskDef(TaskDef):
    """A task's own ``taskDefinition``: the server takes it without a name (the task names it)."""

    name: str | None = None  # type: ignore[assignment]


class SubWorkflowParams(ConductorModel):
    OSS_ONLY = frozenset({"idempotencyKey", "idempotencyStrategy", "priority"})

    #: 3.15 requires it; conductor-oss takes the inline definition's (model/checks.py)
    name: str | None = None
    version: int | None = None
    taskToDomain: dict[str, str] | None = None
    #: an inline definition (the server then names the task after it), or on conductor-oss an
    #: expression that yields one at run time (3.15 refuses a string here)
    workflowDefinition: Annotated[
        Annotated[WorkflowDef, Tag("<definition>")] | Annotated[str, Tag("<expression>")],
        Discriminator(lambda v: "<expression>" if isinstance(v, str) else "<definition>"),
    ] | None = None  # fmt: skip
    # conductor-oss
    idempotencyKey: str | None = None
    idempotencyStrategy: Literal["FAIL", "RETURN_EXISTING"] | None = None
    priority: Any = None


class StateChangeEvent(ConductorModel):
    type: str
    payload: dict[str, Any] | None = None


class WorkflowTask(ConductorModel):
    OSS_ONLY = frozenset(
        {
            "items",
            "onStateChange",
            "joinStatus",
            "cacheConfig",
            "permissive",
            "joinMode",
            "metadata",
        }
    )

    # required wherever the server validates a task, which is not inside a DO_WHILE's loopOver
    # (model/checks.py says where): a loop's tasks may lack them and still be registered
    name: str | None = None
    taskReferenceName: str | None = None
    description: str | None = None
    inputParameters: dict[str, Any] | None = None
    type: str | None = None
    dynamicTaskNameParam: str | None = None
    caseValueParam: str | None = None
    caseExpression: str | None = None
    scriptExpression: str | None = None
    decisionCases: dict[str, list[WorkflowTask]] | None = None
    dynamicForkJoinTasksParam: str | None = None
    dynamicForkTasksParam: str | None = None
    dynamicForkTasksInputParamName: str | None = None
    defaultCase: list[WorkflowTask] | None = None
    forkTasks: list[list[WorkflowTask]] | None = None
    startDelay: int | None = Field(None, ge=0)
    subWorkflowParam: SubWorkflowParams | None = None
    joinOn: list[str] | None = None
    sink: str | None = None
    optional: bool | None = None
    taskDefinition: InlineTaskDef | None = None
    rateLimited: bool | None = None
    defaultExclusiveJoinTask: list[str] | None = None
    asyncComplete: bool | None = None
    loopCondition: str | None = None
    loopOver: list[WorkflowTask] | None = None
    retryCount: int | None = Field(None, ge=0)
    evaluatorType: str | None = None
    expression: str | None = None
    # conductor-oss
    items: str | None = None
    onStateChange: dict[str, list[StateChangeEvent]] | None = None
    joinStatus: str | None = None
    cacheConfig: CacheConfig | None = None
    permissive: bool | None = None
    joinMode: Literal["SYNC", "ASYNC"] | None = None
    metadata: dict[str, Any] | None = None


class WorkflowDef(ConductorModel):
    OSS_ONLY = frozenset(
        {
            "failureWorkflowVersion",
            "workflowStatusListenerSink",
            "rateLimitConfig",
            "inputSchema",
            "outputSchema",
            "enforceSchema",
            "metadata",
            "cacheConfig",
            "maskedFields",
        }
    )
    SERVER_MANAGED = _AUDIT | {"ownerApp", "accessPolicy"}

    name: str = Field(min_length=1)
    description: str | None = None
    version: int | None = None
    tasks: list[WorkflowTask]
    inputParameters: list[str] | None = None
    outputParameters: dict[str, Any] | None = None
    failureWorkflow: str | None = None
    schemaVersion: int | None = None
    restartable: bool | None = None
    workflowStatusListenerEnabled: bool | None = None
    ownerEmail: str | None = None
    timeoutPolicy: Literal["TIME_OUT_WF", "ALERT_ONLY"] | None = None
    timeoutSeconds: int | None = None
    variables: dict[str, Any] | None = None
    inputTemplate: dict[str, Any] | None = None
    accessPolicy: dict[str, str] | None = None
    ownerApp: str | None = None
    createdBy: str | None = None
    updatedBy: str | None = None
    createTime: int | None = None
    updateTime: int | None = None
    # conductor-oss
    failureWorkflowVersion: int | None = None
    workflowStatusListenerSink: str | None = None
    rateLimitConfig: RateLimitConfig | None = None
    inputSchema: SchemaDef | None = None
    outputSchema: SchemaDef | None = None
    enforceSchema: bool | None = None
    metadata: dict[str, Any] | None = None
    cacheConfig: CacheConfig | None = None
    maskedFields: list[str] | None = None


class StartWorkflow(ConductorModel):
    name: str | None = None
    version: int | None = None
    correlationId: str | None = None
    input: dict[str, Any] | None = None
    inputMessage: Any = None
    taskToDomain: dict[str, str] | None = None


class TaskDetails(ConductorModel):
    OSS_ONLY = frozenset({"reasonForIncompletion"})

    workflowId: str | None = None
    taskRefName: str | None = None
    taskId: str | None = None
    output: dict[str, Any] | None = None
    outputMessage: Any = None
    reasonForIncompletion: str | None = None


class Action(ConductorModel):
    OSS_ONLY = frozenset({"terminate_workflow", "update_workflow_variables", "start_agent"})

    action: Literal[
        "start_workflow",
        "complete_task",
        "fail_task",
        "terminate_workflow",
        "update_workflow_variables",
        "start_agent",
    ]
    start_workflow: StartWorkflow | None = None
    complete_task: TaskDetails | None = None
    fail_task: TaskDetails | None = None
    expandInlineJSON: bool | None = None
    # conductor-oss: shapes vary by release, kept as plain maps
    terminate_workflow: dict[str, Any] | None = None
    update_workflow_variables: dict[str, Any] | None = None
    start_agent: dict[str, Any] | None = None


class EventHandler(ConductorModel):
    name: str = Field(min_length=1)
    event: str = Field(min_length=1)
    condition: str | None = None
    actions: list[Action]
    active: bool | None = None
    evaluatorType: str | None = None


WorkflowTask.model_rebuild()
SubWorkflowParams.model_rebuild()
