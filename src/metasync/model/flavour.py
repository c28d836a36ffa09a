"""Server flavours: what each kind of Conductor server accepts (docs/servers.md).

``3.15`` is Netflix Conductor 3.x before 3.21 (the model of 3.15.0); ``oss`` is conductor-oss 3.21
and newer (observed on 3.32.3). Offline checks that depend on the flavour take ``None`` for "not
known yet": a rule only one flavour enforces is then a warning that names it, never an error.
"""

from __future__ import annotations

from typing import Literal

Flavour = Literal["3.15", "oss"]
FLAVOURS: tuple[Flavour, ...] = ("3.15", "oss")
#: how output names each flavour
FLAVOUR_NAMES: dict[str, str] = {"3.15": "Conductor 3.15", "oss": "conductor-oss"}

#: Conductor's system task types on both flavours; any other type runs as a worker (SIMPLE) task
COMMON_TASK_TYPES = frozenset(
    {
        "SIMPLE", "DYNAMIC", "FORK_JOIN", "FORK_JOIN_DYNAMIC", "DECISION", "SWITCH", "JOIN",
        "EXCLUSIVE_JOIN", "DO_WHILE", "SUB_WORKFLOW", "START_WORKFLOW", "EVENT", "WAIT", "HUMAN",
        "USER_DEFINED", "HTTP", "LAMBDA", "INLINE", "TERMINATE", "KAFKA_PUBLISH",
        "JSON_JQ_TRANSFORM", "SET_VARIABLE", "NOOP",
    }
)  # fmt: skip

#: the AI, MCP and agent task types conductor-oss 3.32 registers (system tasks and the ones its
#: bundled workers poll)
OSS_TASK_TYPES = frozenset(
    {
        "LLM_TEXT_COMPLETE", "LLM_CHAT_COMPLETE", "LLM_INDEX_TEXT", "LLM_SEARCH_INDEX",
        "LLM_GENERATE_EMBEDDINGS", "LLM_STORE_EMBEDDINGS", "LLM_GET_EMBEDDINGS",
        "LLM_SEARCH_EMBEDDINGS", "LIST_MCP_TOOLS", "CALL_MCP_TOOL", "AGENT",
        "PULL_WORKFLOW_MESSAGES", "GET_AGENT_CARD", "CANCEL_AGENT", "JDBC", "GENERATE_IMAGE",
        "GENERATE_AUDIO", "GENERATE_VIDEO", "GENERATE_PDF", "WAIT_FOR_WEBHOOK", "HUMAN_TASK",
        "BUSINESS_RULE", "UPDATE_SECRET", "QUERY_PROCESSOR", "OPS_GENIE", "GET_WORKFLOW",
        "UPDATE_TASK", "GET_SIGNED_JWT", "PUBLISH_BUSINESS_STATE", "TASK_SUMMARY",
    }
)  # fmt: skip


def task_types(flavour: Flavour | None) -> frozenset[str]:
    """The task types the flavour knows (both flavours' when it is not known)."""
    return COMMON_TASK_TYPES if flavour == "3.15" else COMMON_TASK_TYPES | OSS_TASK_TYPES


def flavour_of(version: str | None) -> Flavour:
    """3.x before 3.21 behaves as 3.15; anything newer is conductor-oss (§0.2)."""
    if not version:
        return "3.15"
    parts = [int(p) for p in version.split("-")[0].split(".")[:2] if p.isdigit()]
    return "oss" if parts and (parts[0], parts[1] if len(parts) > 1 else 0) >= (3, 21) else "3.15"
