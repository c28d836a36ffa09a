"""Transient failures between metasync and real servers of both flavours (a fault proxy between).

Client level: which requests are sent again, which are read back first, and that the attempts are
bounded. Apply level: under faults every object is reported landed, not landed or unknown as the
server (read directly, not through the proxy) shows, and a second apply converges.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import conductor_server
from faultproxy import FAULTS, Fault, FaultProxy
from helpers import prefixed_example, run_cli
from metasync.conductor import client as client_module
from metasync.conductor.client import ConductorClient
from metasync.errors import ServerError
from metasync.model.kinds import KINDS

pytestmark = pytest.mark.server

WORKFLOWS = "/api/metadata/workflow"
TASKDEFS = "/api/metadata/taskdefs"
EVENTS = "/api/event"
#: about a third of all requests faulted, of every kind
MIXED: dict[Fault, float] = {"delay": 0.08, "503": 0.10, "close": 0.08, "lose": 0.10}
SEED = 7


@pytest.fixture(autouse=True)
def _short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's clients retry as they would for real, with waits a hundred times shorter."""
    monkeypatch.setattr(client_module, "RETRY_BASE_DELAY_S", 0.002)
    monkeypatch.setattr(client_module, "RETRY_MAX_DELAY_S", 0.03)


def through(proxy: FaultProxy) -> ConductorClient:
    return ConductorClient.connect(proxy.url, label="the dev server", retry_base_delay=0.002)


def workflow(name: str, description: str = "ours") -> dict[str, Any]:
    return {
        "name": name,
        "version": 1,
        "description": description,
        "ownerEmail": "team@example.com",
        "schemaVersion": 2,
        "tasks": [{"name": "wait", "taskReferenceName": "wait", "type": "WAIT"}],
    }


def live_workflow(api: httpx.Client, name: str) -> dict[str, Any] | None:
    response = api.get(f"/metadata/workflow/{name}", params={"version": 1})
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


# -- the client, one request at a time -------------------------------------------------------------


def test_a_create_whose_answer_was_lost_is_read_back_not_sent_twice(
    conductor: conductor_server.Server, api: httpx.Client, prefix: str
) -> None:
    spec = workflow(f"{prefix}w")
    with (
        FaultProxy(conductor.url, first={f"POST {WORKFLOWS}": ["lose"]}) as proxy,
        through(proxy) as client,
    ):
        client.create_workflow(spec)
    assert proxy.seen("POST", WORKFLOWS) == ["lose"]  # one POST, and it reached the server
    assert proxy.seen("GET", f"{WORKFLOWS}/{prefix}w") == ["pass"]  # the read-back
    assert proxy.counts["lose"] == 1
    assert (live_workflow(api, f"{prefix}w") or {}).get("description") == "ours"


def test_a_create_closed_before_it_reached_the_server_is_sent_again(
    conductor: conductor_server.Server, api: httpx.Client, prefix: str
) -> None:
    spec = workflow(f"{prefix}w")
    with (
        FaultProxy(conductor.url, first={f"POST {WORKFLOWS}": ["close", "503"]}) as proxy,
        through(proxy) as client,
    ):
        client.create_workflow(spec)
    assert proxy.seen("POST", WORKFLOWS) == ["close", "503", "pass"]
    assert proxy.forwarded("POST", WORKFLOWS) == 1
    assert proxy.seen("GET", f"{WORKFLOWS}/{prefix}w") == ["pass", "pass"]  # 404 both times
    assert live_workflow(api, f"{prefix}w") is not None


def test_a_lost_create_found_different_on_read_back_is_someone_elses(
    conductor: conductor_server.Server, api: httpx.Client, prefix: str
) -> None:
    assert api.post("/metadata/workflow", json=workflow(f"{prefix}w", "theirs")).status_code == 200
    with (
        FaultProxy(conductor.url, first={f"POST {WORKFLOWS}": ["lose"]}) as proxy,
        through(proxy) as client,
        pytest.raises(ServerError) as failure,
    ):
        client.create_workflow(workflow(f"{prefix}w"))
    assert failure.value.status == 409
    assert not failure.value.ambiguous
    assert failure.value.problem.message == (
        f"POST /api/metadata/workflow -> 409: WorkflowDef {prefix}w v1 is on the dev server, but "
        "not as sent (read back after an attempt whose answer was lost)"
    )
    assert proxy.seen("POST", WORKFLOWS) == ["lose"]  # the server answered 409; that was lost
    assert (live_workflow(api, f"{prefix}w") or {}).get("description") == "theirs"


def test_an_event_handler_create_whose_answer_was_lost_is_found_in_the_list(
    conductor: conductor_server.Server, api: httpx.Client, prefix: str
) -> None:
    handler = {
        "name": f"{prefix}h",
        "event": f"conductor:{prefix}w:done",
        "active": True,
        "actions": [
            {
                "action": "complete_task",
                "complete_task": {"workflowId": "${id}", "taskRefName": "wait"},
            }
        ],
    }
    with (
        FaultProxy(conductor.url, first={f"POST {EVENTS}": ["lose"]}) as proxy,
        through(proxy) as client,
    ):
        client.create(KINDS["EventHandler"], [handler])
    assert proxy.seen("POST", EVENTS) == ["lose"]
    assert proxy.seen("GET", EVENTS) == ["pass"]
    assert [h["name"] for h in api.get("/event").json()].count(f"{prefix}h") == 1


def test_a_delete_whose_answer_was_lost_is_done_on_both_flavours(
    conductor: conductor_server.Server, api: httpx.Client, prefix: str
) -> None:
    """The repeated DELETE finds nothing: 3.15 says 404, conductor-oss 500 "No such ..."."""
    name = f"{prefix}doomed"
    taskdef = {"name": name, "ownerEmail": "team@example.com"}
    assert api.post("/metadata/taskdefs", json=[taskdef]).status_code == 200
    with (
        FaultProxy(conductor.url, first={f"DELETE {TASKDEFS}/{name}": ["lose"]}) as proxy,
        through(proxy) as client,
    ):
        client.delete(KINDS["TaskDef"], name, None)
    assert proxy.seen("DELETE", f"{TASKDEFS}/{name}") == ["lose", "pass"]
    assert api.get(f"/metadata/taskdefs/{name}").status_code == 404


def test_a_503_on_a_read_is_retried_and_the_answer_used(
    conductor: conductor_server.Server, api: httpx.Client, prefix: str
) -> None:
    assert api.post("/metadata/taskdefs", json=[{"name": f"{prefix}t", "ownerEmail": "a@b.c"}])
    with (
        FaultProxy(conductor.url, first={f"GET {TASKDEFS}": ["503", "close", "lose"]}) as proxy,
        through(proxy) as client,
    ):
        names = {t["name"] for t in client.objects(KINDS["TaskDef"]) or ()}
    assert proxy.seen("GET", TASKDEFS) == ["503", "close", "lose", "pass"]
    assert f"{prefix}t" in names


def test_an_update_that_never_gets_an_answer_is_tried_five_times_then_maybe_done(
    conductor: conductor_server.Server, prefix: str
) -> None:
    spec = {"name": f"{prefix}t", "ownerEmail": "team@example.com"}
    with (
        FaultProxy(conductor.url, shares={"close": 1.0}, match=lambda m, p: m == "PUT") as proxy,
        through(proxy) as client,
        pytest.raises(ServerError) as failure,
    ):
        client.update(KINDS["TaskDef"], [spec])
    assert proxy.seen("PUT", TASKDEFS) == ["close"] * 5
    assert failure.value.ambiguous  # from where metasync stands, each one may have been carried out
    assert failure.value.problem.message == (
        "PUT /api/metadata/taskdefs: no answer from the dev server (RemoteProtocolError: Server "
        "disconnected without sending a response.); tried 5 times"
    )
    assert failure.value.problem.hint == (
        "It may have been carried out all the same: plan again to see whether it landed."
    )


def test_an_update_refused_at_connect_is_tried_five_times_and_known_not_done() -> None:
    attempts: list[str] = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            attempts.append(f"{request.method} {request.url.path}")
            return super().handle_request(request)

    closed = f"http://127.0.0.1:{conductor_server.free_port()}"
    with (
        ConductorClient.connect(
            closed, label="the dev server", transport=Counting(), retry_base_delay=0.002
        ) as client,
        pytest.raises(ServerError) as failure,
    ):
        client.update(KINDS["EventHandler"], [{"name": "h"}])
    assert attempts == ["PUT /api/event"] * 5
    assert not failure.value.ambiguous
    assert re.fullmatch(
        r"PUT /api/event: cannot reach the dev server \(ConnectError: .*\); tried 5 times",
        failure.value.problem.message,
    )
    assert failure.value.problem.hint == (
        "Is the server running, and is server.url in environment.yaml right?"
    )


def test_a_proxy_whose_server_is_down_answers_502_and_reads_give_up_after_five() -> None:
    closed = f"http://127.0.0.1:{conductor_server.free_port()}"
    with (
        FaultProxy(closed) as proxy,
        through(proxy) as client,
        pytest.raises(ServerError) as failure,
    ):
        client.objects(KINDS["WorkflowDef"])
    assert proxy.seen("GET", WORKFLOWS) == ["pass"] * 5
    assert failure.value.status == 502
    assert failure.value.problem.message.startswith(
        "GET /api/metadata/workflow -> 502: fault proxy: upstream unreachable"
    )
    assert failure.value.problem.message.endswith("; tried 5 times")
    assert not failure.value.ambiguous


# -- apply through faults --------------------------------------------------------------------------


def apply(project: Path) -> tuple[int, str, dict[str, str]]:
    """Exit code, output, and the apply table: object title -> landed / not landed / unknown."""
    result = run_cli("--project", str(project), "apply", "--env", "dev", "--auto-approve")
    rows = re.findall(
        r"^│ (\S+ \S+(?: v\d+)?) +│ \w+ +│ (landed|not landed|unknown) +│$", result.stdout, re.M
    )
    return result.exit_code, result.stdout + result.stderr, dict(rows)


def point(project: Path, url: str) -> Path:
    """Point the project's dev environment at ``url`` (a proxy, or the server itself)."""
    env = project / "environments" / "dev" / "environment.yaml"
    env.write_text(re.sub(r"url: http://127\.0\.0\.1:\d+", f"url: {url}", env.read_text()))
    return project


def server_view(direct: Path, prefix: str) -> dict[str, str]:
    """This test's objects as a plan made directly against the server sees them: title -> action."""
    result = run_cli("--project", str(direct), "plan", "--env", "dev", "-o", "json")
    assert result.exit_code == 0, result.stderr
    changes = json.loads(result.stdout)["changes"]
    return {
        f"{c['kind']} {c['name']}" + (f" v{c['version']}" if c["version"] is not None else ""): (
            c["action"]
        )
        for c in changes
        if c["name"].startswith(prefix)
    }


def assert_reported_truly(table: dict[str, str], output: str, truth: dict[str, str]) -> None:
    """Landed: the server matches git. Not landed: it does not. Unknown: only if unverifiable."""
    assert set(table) == set(truth), output
    for title, status in table.items():
        if status == "landed":
            assert truth[title] == "noop", (
                f"{title} reported landed, the server disagrees\n{output}"
            )
        elif status == "not landed":
            assert truth[title] != "noop", f"{title} reported not landed, but it is there\n{output}"
        else:
            assert "read-back failed" in output, f"{title} left unknown for no reason\n{output}"


def test_apply_through_a_third_of_requests_faulted_reports_truly_and_converges(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    direct = prefixed_example(tmp_path / "direct", prefix, conductor.url)
    with FaultProxy(
        conductor.url,
        seed=SEED,
        shares=MIXED,
        first={
            f"POST {WORKFLOWS}": ["lose"]
        },  # the first create's answer is lost, whatever the seed
    ) as proxy:
        project = prefixed_example(tmp_path / "project", prefix, proxy.url)
        code, output, table = apply(project)

        assert len(table) == 17, output
        # the faults really happened, a third of all requests, of every kind
        assert all(proxy.counts[kind] >= 1 for kind in FAULTS), proxy.counts
        assert sum(proxy.counts[kind] for kind in FAULTS) >= len(proxy.log) / 4, proxy.counts
        assert_reported_truly(table, output, server_view(direct, prefix))
        assert (code == 0) == all(s == "landed" for s in table.values()), output

        # the same proxy, its faults going on: the second apply converges
        code, output, _ = apply(project)
    assert code == 0, output
    assert set(server_view(direct, prefix).values()) == {"noop"}


def test_new_workflows_go_in_one_put_list_whose_lost_answer_is_sent_again_and_lands_once(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    """The example's six workflows: one look at what is there, one PUT list (its answer lost: it
    is sent again, an upsert), no POST of a workflow; all land, each once."""
    direct = prefixed_example(tmp_path / "direct", prefix, conductor.url)
    with FaultProxy(conductor.url, first={f"PUT {WORKFLOWS}": ["lose"]}) as proxy:
        project = prefixed_example(tmp_path / "project", prefix, proxy.url)
        code, output, table = apply(project)
    assert code == 0, output
    assert len(table) == 17, output
    assert set(table.values()) == {"landed"}, output
    # read once, by apply just before the list (the plan, in place, and the read-back ask for
    # exactly the versions they need: no index)
    assert proxy.seen("GET", f"{WORKFLOWS}/names-and-versions") == ["pass"]
    assert proxy.seen("PUT", WORKFLOWS)[:2] == ["lose", "pass"]  # the list, then again
    assert proxy.forwarded("POST", WORKFLOWS) == 2  # the lock and the history: no workflow
    assert set(server_view(direct, prefix).values()) == {"noop"}
    held = api.get("/metadata/workflow/names-and-versions").json()
    assert [v["version"] for v in held[f"{prefix}order_to_cash"]] == [1]


def test_what_never_got_through_is_not_landed_and_the_next_apply_lands_it(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    direct = prefixed_example(tmp_path / "direct", prefix, conductor.url)
    handler = f"EventHandler {prefix}on_order_shipped"
    faults: list[Fault] = ["close", "503", "close", "503", "close"]
    with FaultProxy(conductor.url, first={f"POST {EVENTS}": faults}) as proxy:
        project = prefixed_example(tmp_path / "project", prefix, proxy.url)
        code, output, table = apply(project)
    assert proxy.seen("POST", EVENTS) == faults
    assert proxy.seen("GET", EVENTS)[-6:] == ["pass"] * 6  # five read-backs, then apply's own
    assert code == 1
    assert table[handler] == "not landed"
    assert sum(s == "landed" for s in table.values()) == 16
    assert (
        f"{handler}: error: POST /api/event: no answer from the dev server ({proxy.url}) "
        "(RemoteProtocolError: Server disconnected without sending a response.); tried 5 times, "
        f"and a read-back shows {handler} is not there\n"
        "  Nothing was written: apply again when the server is healthy."
    ) in output
    assert_reported_truly(table, output, server_view(direct, prefix))

    code, output, table = apply(point(project, conductor.url))
    assert code == 0, output
    assert table == {handler: "landed"}
    assert set(server_view(direct, prefix).values()) == {"noop"}


def test_lost_answers_and_a_failed_read_back_leave_objects_unknown_and_the_next_apply_settles(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    """Every task definition upsert lands but its answer is lost; then reading them back fails."""
    direct = prefixed_example(tmp_path / "direct", prefix, conductor.url)
    wrote = [False]

    def faulted(method: str, path: str) -> bool:
        if (method, path) == ("POST", TASKDEFS):
            wrote[0] = True
            return True
        return wrote[0] and (method, path) == ("GET", TASKDEFS)

    with FaultProxy(conductor.url, shares={"lose": 1.0}, match=faulted) as proxy:
        project = prefixed_example(tmp_path / "project", prefix, proxy.url)
        code, output, table = apply(project)
    assert proxy.seen("POST", TASKDEFS) == ["lose"] * 5
    assert proxy.seen("GET", TASKDEFS) == ["pass"] + ["lose"] * 5  # plan, then the read-back
    assert code == 1
    taskdefs = {t: s for t, s in table.items() if t.startswith("TaskDef ")}
    assert len(taskdefs) == 10
    assert set(taskdefs.values()) == {"unknown"}
    assert {s for t, s in table.items() if t not in taskdefs} == {"landed"}
    assert "read-back failed" in output
    assert "10 unknown (plan again to see whether they landed)" in output
    truth = server_view(direct, prefix)
    assert_reported_truly(table, output, truth)
    assert {truth[t] for t in taskdefs} == {"noop"}  # they did land

    code, output, _ = apply(point(project, conductor.url))
    assert code == 0, output
    assert "Nothing to apply: the server matches git." in output
    assert set(server_view(direct, prefix).values()) == {"noop"}


def test_a_lock_that_cannot_be_released_hides_no_result_and_the_next_run_takes_it_over(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    lock = f"{WORKFLOWS}/metasync_lock_{prefix}order-to-cash/1"
    with FaultProxy(conductor.url, first={f"DELETE {lock}": ["503"] * 5}) as proxy:
        project = prefixed_example(tmp_path / "project", prefix, proxy.url)
        code, output, table = apply(project)
    assert proxy.seen("DELETE", lock) == ["503"] * 5
    assert code == 0, output  # everything landed: the lock is a warning, not the outcome
    assert len(table) == 17
    assert set(table.values()) == {"landed"}
    assert "17 of 17 change(s) landed." in output
    assert "Before-images saved in " in output
    assert (
        f"warning: the dev lock (metasync_lock_{prefix}order-to-cash v1) could not be released: "
        f"DELETE {lock} -> 503: "
    ) in output
    assert output.index("17 of 17 change(s) landed.") < output.index("could not be released")
    assert api.get(f"/metadata/workflow/metasync_lock_{prefix}order-to-cash").status_code == 200

    # the next run from this project takes its own stuck lock over, and releases its own
    code, output, _ = apply(point(project, conductor.url))
    assert code == 0, output
    assert "Nothing to apply" in output
    assert "locked" not in output
    assert api.get(f"/metadata/workflow/metasync_lock_{prefix}order-to-cash").status_code == 404
