"""Apply in lists: how a plan's writes are cut into bounded steps, and what each object's outcome
is when a list is refused, lost or interrupted (error cases a real server will not produce on
demand, on a mock transport; the happy path and a lost list answer against the real servers are in
test_resilience.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from metasync.apply import steps as steps_module
from metasync.apply.executor import Interrupted, execute
from metasync.apply.steps import BATCH_OBJECTS, steps_for
from metasync.conductor import client as client_module
from metasync.conductor.client import ConductorClient
from metasync.plan.model import Change, Plan

WORKFLOWS = "/api/metadata/workflow"


def new_workflow(i: int, *, bad: bool = False) -> Change:
    tasks = [] if bad else [{"name": "w", "taskReferenceName": "w", "type": "WAIT"}]
    name = f"w{i:04d}"
    spec = {"name": name, "version": 1, "ownerEmail": "a@b.c", "tasks": tasks}
    return Change("WorkflowDef", name, 1, "create", desired=spec)


class Conductor:
    """Just enough of a server for workflow writes, as both flavours behave (checked on 3.15.0
    and conductor-oss 3.32.3): a PUT list with one invalid definition is refused whole with 400
    and stores nothing; a POST of one that exists is 409. ``lose`` drops the answer of that many
    PUTs (after storing)."""

    def __init__(self, lose: int = 0, taken: tuple[str, ...] = (), index: bool = True):
        self.stored: dict[str, dict[str, Any]] = {n: {"name": n, "version": 1} for n in taken}
        self.log: list[str] = []
        self.lose = lose
        self.index = index  # False: no names-and-versions (a server that lacks it answers 404)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.log.append(f"{request.method} {request.url.path}")
        body: Any = json.loads(request.content) if request.content else {}
        if request.url.path == f"{WORKFLOWS}/names-and-versions" and self.index:
            return httpx.Response(200, json={n: [{"name": n, "version": 1}] for n in self.stored})
        if request.method == "PUT":
            bad = [i for i, spec in enumerate(body) if not spec["tasks"]]
            if bad:
                return httpx.Response(400, json={"message": "Validation failed", "validationErrors": [
                    {"path": f"updateWorkflowDef.workflowDefList[{bad[0]}].tasks",
                     "message": "WorkflowTask list cannot be empty"}]})  # fmt: skip
            self.stored |= {spec["name"]: spec for spec in body}
            if self.lose:
                self.lose -= 1
                raise httpx.RemoteProtocolError("Server disconnected", request=request)
            return httpx.Response(200, json={"bulkErrorResults": {}})
        if request.method == "POST":
            if body["name"] in self.stored:
                return httpx.Response(409, json={"message": f"Workflow with {body['name']}.1 already exists!"})  # fmt: skip
            if not body["tasks"]:
                return httpx.Response(400, json={"message": "WorkflowTask list cannot be empty"})
            self.stored[body["name"]] = body
            return httpx.Response(200)
        return httpx.Response(404, json={"message": "not found"})


def connect(server: Conductor) -> ConductorClient:
    return ConductorClient.connect("http://conductor.test", label="the dev server",
                                   transport=httpx.MockTransport(server), sleep=lambda _: None)  # fmt: skip


def plan_of(changes: list[Change]) -> Plan:
    return Plan("dev", "http://conductor.test", "3.15", tuple(changes))


def test_new_workflows_are_cut_into_steps_of_at_most_the_batch_size() -> None:
    changes = [new_workflow(i) for i in range(2 * BATCH_OBJECTS + 3)]
    steps = steps_for(plan_of(changes))
    assert [len(s.changes) for s in steps] == [BATCH_OBJECTS, BATCH_OBJECTS, 3]
    assert all(s.action == "create" for s in steps)
    assert steps[2].describe() == "create WorkflowDef: WorkflowDef w0500 v1, WorkflowDef w0501 v1, WorkflowDef w0502 v1"  # fmt: skip
    assert steps[0].describe() == "create WorkflowDef: 250 objects, WorkflowDef w0000 v1 … WorkflowDef w0249 v1"  # fmt: skip


def test_new_workflows_go_in_one_put_list_after_one_look_at_what_is_there() -> None:
    server = Conductor()
    changes = [new_workflow(i) for i in range(40)]
    outcomes = execute(steps_for(plan_of(changes)), connect(server))
    assert {o.status for o in outcomes} == {"landed"}
    assert server.log == [f"GET {WORKFLOWS}/names-and-versions", f"PUT {WORKFLOWS}"]
    assert len(server.stored) == 40


def test_without_the_names_and_versions_index_new_workflows_go_one_by_one() -> None:
    # Orkes documents no names-and-versions: a blind list could overwrite one made meanwhile
    server = Conductor(index=False, taken=("w0002",))
    outcomes = execute(steps_for(plan_of([new_workflow(i) for i in range(4)])), connect(server))
    assert server.log[0] == f"GET {WORKFLOWS}/names-and-versions"
    assert f"PUT {WORKFLOWS}" not in server.log
    assert server.log.count(f"POST {WORKFLOWS}") == 4
    assert {o.change.name: o.status for o in outcomes}["w0002"] == "not landed"
    assert server.stored["w0002"] == {"name": "w0002", "version": 1}  # theirs, untouched
    assert [o.status for o in outcomes].count("landed") == 3


def test_a_list_past_the_byte_bound_is_split(monkeypatch: pytest.MonkeyPatch) -> None:
    one = len(json.dumps(new_workflow(0).desired, separators=(",", ":")))
    monkeypatch.setattr(client_module, "BATCH_BYTES", one * 10)
    server = Conductor()
    outcomes = execute(steps_for(plan_of([new_workflow(i) for i in range(25)])), connect(server))
    assert {o.status for o in outcomes} == {"landed"}
    assert server.log.count(f"PUT {WORKFLOWS}") == 3  # 9 + 9 + 7 (each body under the bound)
    assert len(server.stored) == 25


def test_the_index_is_read_once_for_every_list_and_each_list_is_checked_against_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10,000 new workflows go in 40 lists: one read of the index (10,000 names) serves them
    all, with what the lists before wrote; one made since the plan is still found in its list."""
    monkeypatch.setattr(steps_module, "BATCH_OBJECTS", 2)
    server = Conductor(taken=("w0003",))
    outcomes = execute(steps_for(plan_of([new_workflow(i) for i in range(6)])), connect(server))
    status = {o.change.name: o.status for o in outcomes}
    assert status == {f"w{i:04d}": "not landed" if i == 3 else "landed" for i in range(6)}
    assert server.log == [
        f"GET {WORKFLOWS}/names-and-versions", f"PUT {WORKFLOWS}",  # w0000, w0001
        f"POST {WORKFLOWS}", f"POST {WORKFLOWS}",  # w0002, w0003 (taken): one by one
        f"PUT {WORKFLOWS}",  # w0004, w0005
    ]  # fmt: skip
    assert server.stored["w0003"] == {"name": "w0003", "version": 1}  # theirs, untouched


def test_a_list_refused_for_one_invalid_workflow_is_sent_one_by_one_and_names_it() -> None:
    server = Conductor()
    changes = [new_workflow(i, bad=i == 3) for i in range(6)]
    outcomes = execute(steps_for(plan_of(changes)), connect(server))
    status = {o.change.name: o.status for o in outcomes}
    assert status == {f"w{i:04d}": "not landed" if i == 3 else "landed" for i in range(6)}
    (problem,) = next(o for o in outcomes if o.change.name == "w0003").problems
    assert (
        problem.message == "POST /api/metadata/workflow -> 400: WorkflowTask list cannot be empty"
    )
    assert server.log[:2] == [f"GET {WORKFLOWS}/names-and-versions", f"PUT {WORKFLOWS}"]
    assert server.log[2:] == [f"POST {WORKFLOWS}"] * 6
    assert sorted(server.stored) == [f"w{i:04d}" for i in range(6) if i != 3]


def test_a_workflow_made_meanwhile_is_not_overwritten_by_the_list() -> None:
    server = Conductor(taken=("w0002",))
    outcomes = execute(steps_for(plan_of([new_workflow(i) for i in range(4)])), connect(server))
    status = {o.change.name: o.status for o in outcomes}
    assert status == {"w0000": "landed", "w0001": "landed", "w0002": "not landed", "w0003": "landed"}  # fmt: skip
    assert f"PUT {WORKFLOWS}" not in server.log
    assert server.stored["w0002"] == {"name": "w0002", "version": 1}  # theirs, untouched
    (problem,) = next(o for o in outcomes if o.change.name == "w0002").problems
    assert problem.message == "POST /api/metadata/workflow -> 409: Workflow with w0002.1 already exists!"  # fmt: skip


def test_a_list_whose_answer_is_lost_is_sent_again_and_lands_once() -> None:
    server = Conductor(lose=1)
    outcomes = execute(steps_for(plan_of([new_workflow(i) for i in range(5)])), connect(server))
    assert {o.status for o in outcomes} == {"landed"}
    assert server.log == [f"GET {WORKFLOWS}/names-and-versions"] + [f"PUT {WORKFLOWS}"] * 2


def test_a_list_whose_answers_keep_being_lost_leaves_each_object_unknown() -> None:
    server = Conductor(lose=99)
    outcomes = execute(steps_for(plan_of([new_workflow(i) for i in range(5)])), connect(server))
    assert {o.status for o in outcomes} == {"unknown"}  # the read-back settles them
    assert server.log.count(f"PUT {WORKFLOWS}") == client_module.RETRY_ATTEMPTS  # never one by one


def test_ctrl_c_while_a_refused_list_goes_one_by_one_says_which_landed() -> None:
    server = Conductor()
    changes = [new_workflow(i, bad=i == 0) for i in range(5)]
    posts = 0

    def interrupting(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            if posts == 3:
                raise KeyboardInterrupt
        return server(request)

    client = ConductorClient.connect("http://conductor.test", label="the dev server",
                                     transport=httpx.MockTransport(interrupting))  # fmt: skip
    with pytest.raises(Interrupted) as stop:
        execute(steps_for(plan_of(changes)), client)
    status = {o.change.name: o.status for o in stop.value.outcomes}
    assert status == {"w0000": "not landed", "w0001": "landed", "w0002": "unknown",
                      "w0003": "not applied", "w0004": "not applied"}  # fmt: skip


def test_a_batch_bound_of_one_sends_each_workflow_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps_module, "BATCH_OBJECTS", 1)
    steps = steps_for(plan_of([new_workflow(i) for i in range(3)]))
    assert [len(s.changes) for s in steps] == [1, 1, 1]
    server = Conductor()
    execute(steps, connect(server))
    assert server.log == [f"POST {WORKFLOWS}"] * 3
