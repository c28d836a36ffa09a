"""Who last wrote a live object and when, as drift tells it: from the server's own fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metasync.plan.drift import last_write
from metasync.render.last_write import ago, last_write_json, last_write_line

NOW = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
MILLIS = int((NOW - timedelta(hours=3)).timestamp() * 1000)


def test_an_updated_workflow_says_when_and_who() -> None:
    live = {"updateTime": MILLIS, "updatedBy": "alice", "createTime": 1,
            "ownerApp": "metasync/orders@sha256:abc"}  # fmt: skip
    written = last_write("WorkflowDef", live)
    assert last_write_line(written, NOW) == (
        "updated 2026-12-01 20:00:00 UTC (3 hours ago) by alice, ownerApp metasync/orders"
    )
    assert last_write_json(written) == {
        "time": "2026-12-01T20:00:00.000Z", "action": "updated", "by": "alice",
        "ownerApp": "metasync/orders@sha256:abc", "note": None,
    }  # fmt: skip


def test_what_the_server_leaves_empty_is_said_so() -> None:
    # conductor-oss fills updateTime 0 until the first update, and "" for users without auth
    created = last_write("TaskDef", {"createTime": MILLIS, "updateTime": 0, "createdBy": ""})
    assert (
        last_write_line(created, NOW)
        == "created 2026-12-01 20:00:00 UTC (3 hours ago), no user recorded"
    )
    schedule = last_write("WorkflowSchedule", {"updatedTime": MILLIS, "updatedBy": "ops"})
    assert (schedule.action, schedule.by) == ("updated", "ops")
    handler = last_write("EventHandler", {"name": "x", "active": True})
    assert last_write_line(handler, NOW) == "the server records no time or user for event handlers"
    assert last_write_json(handler) == {
        "time": None, "action": None, "by": None, "ownerApp": None,
        "note": "the server records no time or user for event handlers",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(5, "just now"), (60, "1 minute ago"), (150, "2 minutes ago"), (7200, "2 hours ago"),
     (86400 * 3 + 5, "3 days ago"), (-600, "in the future: check the server's clock")],
)  # fmt: skip
def test_how_long_ago(seconds: int, said: str) -> None:
    assert ago(NOW - timedelta(seconds=seconds), NOW) == said
