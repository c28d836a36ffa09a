"""Client error paths and auth that a real 3.15 server will not produce on demand (MockTransport).

The happy paths and the real server's own errors are covered against the real server elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from metasync.conductor.client import ConductorClient
from metasync.conductor.transport import _holds
from metasync.errors import ServerError
from metasync.model.kinds import KINDS

Handler = Callable[[httpx.Request], httpx.Response]


def client(
    handler: Handler,
    key_id: str | None = None,
    key_secret: str | None = None,
    waits: list[float] | None = None,
    attempts: int | None = None,
) -> ConductorClient:
    """A client on a mock transport; its waits between attempts are recorded, not slept."""
    recorded = waits if waits is not None else []
    return ConductorClient.connect(
        "http://conductor.test",
        label="the dev server",
        transport=httpx.MockTransport(handler),
        key_id=key_id,
        key_secret=key_secret,
        retry_attempts=attempts,
        sleep=recorded.append,
    )


class Server:
    """A scripted server and a log of what it was sent ("METHOD /path").

    ``GET_api_event=[a, b]``: GET /api/event answers a, then b from then on.
    """

    def __init__(self, **script: list[Callable[[httpx.Request], httpx.Response]]):
        self.script = {
            f"{method} /{path.replace('_', '/')}": list(answers)
            for key, answers in script.items()
            for method, path in [key.split("_", 1)]
        }
        self.log: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.path}"
        self.log.append(key)
        answers = self.script[key]
        return (answers.pop(0) if len(answers) > 1 else answers[0])(request)


def answer(
    status: int, body: Any = None, **headers: str
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def lost(request: httpx.Request) -> httpx.Response:
    """Sent, carried out or not, and the connection closed before an answer."""
    raise httpx.RemoteProtocolError(
        "Server disconnected without sending a response.", request=request
    )


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"status": 503, "message": "busy"})


def test_validation_errors_are_listed_with_their_paths() -> None:
    body = {
        "status": 400,
        "message": "Validation failed, check below errors for detail.",
        "validationErrors": [
            {
                "path": "updateWorkflowDef.workflowDefList[0].tasks[1].name",
                "message": "TaskName cannot be empty",
            }
        ],
    }
    with pytest.raises(ServerError) as failure:
        client(lambda r: httpx.Response(400, json=body)).update_workflows([{"name": "w"}])
    assert failure.value.status == 400
    assert str(failure.value) == (
        "error: PUT /api/metadata/workflow -> 400: Validation failed, check below errors for detail.\n"
        "  Fix the definition as the server says; `metasync validate` catches most of these offline.\n"
        "error: workflowDefList[0].tasks[1].name: TaskName cannot be empty"
    )


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (409, "The object was created meanwhile by someone else: plan again."),
        (500, "A 500 on a metadata write usually means the server could not read the payload"),
    ],
)
def test_refusals_say_what_to_do(status: int, hint: str) -> None:
    handler: Handler = lambda r: httpx.Response(status, json={"status": status, "message": "no"})  # noqa: E731
    with pytest.raises(ServerError) as failure:
        client(handler).create_workflow({"name": "w"})
    assert failure.value.problem.message == f"POST /api/metadata/workflow -> {status}: no"
    assert (failure.value.problem.hint or "").startswith(hint)


def test_partial_bulk_failure_names_what_did_not_land() -> None:
    body = {"bulkErrorResults": {"b": "storage error"}, "bulkSuccessfulResults": ["a"]}
    with pytest.raises(ServerError) as failure:
        client(lambda r: httpx.Response(200, json=body)).update_workflows(
            [{"name": "a"}, {"name": "b"}]
        )
    assert "the server stored some definitions but not b" in str(failure.value)
    assert "b: storage error" in str(failure.value)


def test_connection_errors_and_timeouts_are_retried_a_bounded_number_of_times() -> None:
    server = Server(GET_api_metadata_taskdefs=[refused])
    waits: list[float] = []
    with pytest.raises(ServerError) as failure:
        client(server, waits=waits).objects(KINDS["TaskDef"])
    assert failure.value.problem.message == (
        "GET /api/metadata/taskdefs: cannot reach the dev server (ConnectError: connection "
        "refused); tried 5 times"
    )
    assert failure.value.problem.hint == (
        "Is the server running, and is server.url in environment.yaml right?"
    )
    assert server.log == ["GET /api/metadata/taskdefs"] * 5
    assert len(waits) == 4
    assert not failure.value.ambiguous

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(
        ServerError, match=r"did not answer within 30\.0s; tried 5 times"
    ) as failure:
        client(slow).objects(KINDS["WorkflowDef"])
    assert not failure.value.ambiguous  # a read carries nothing out


def test_backoff_doubles_with_jitter_up_to_a_cap() -> None:
    waits: list[float] = []
    with pytest.raises(ServerError):
        client(Server(GET_api_event=[unavailable]), waits=waits, attempts=8).objects(
            KINDS["EventHandler"]
        )
    steps = [0.2, 0.4, 0.8, 1.6, 3.0, 3.0, 3.0]
    assert len(waits) == len(steps)
    for wait, step in zip(waits, steps, strict=True):
        assert step / 2 <= wait <= step


def test_a_503_on_a_read_is_retried_and_the_answer_used() -> None:
    server = Server(
        GET_api_metadata_taskdefs=[unavailable, unavailable, answer(200, [{"name": "t"}])]
    )
    assert client(server).objects(KINDS["TaskDef"]) == [{"name": "t"}]
    assert server.log == ["GET /api/metadata/taskdefs"] * 3


def test_retry_after_is_honoured_up_to_a_cap() -> None:
    waits: list[float] = []
    server = Server(
        GET_api_event=[answer(429, {"message": "slow down"}, **{"Retry-After": "2"}),
                       answer(503, {"message": "busy"}, **{"Retry-After": "3600"}),
                       answer(200, [])]
    )  # fmt: skip
    assert client(server, waits=waits).objects(KINDS["EventHandler"]) == []
    assert waits[0] == 2.0
    assert waits[1] == 10.0


def test_a_429_on_a_create_is_sent_again_without_reading_back() -> None:
    """429 turns a request away before it is carried out: nothing to read back."""
    server = Server(POST_api_metadata_workflow=[answer(429, {"message": "slow down"}), answer(200)])
    client(server).create_workflow({"name": "w", "version": 1})
    assert server.log == ["POST /api/metadata/workflow"] * 2


@pytest.mark.parametrize("status", [400, 404, 409, 500])
def test_refusals_and_500_are_not_retried(status: int) -> None:
    server = Server(PUT_api_metadata_taskdefs=[answer(status, {"message": "no"})])
    with pytest.raises(ServerError) as failure:
        client(server).update(KINDS["TaskDef"], [{"name": "t"}])
    assert failure.value.status == status
    assert server.log == ["PUT /api/metadata/taskdefs"]


def test_an_update_without_an_answer_is_sent_again_then_reported_as_maybe_done() -> None:
    server = Server(PUT_api_event=[lost])
    with pytest.raises(ServerError) as failure:
        client(server).update(KINDS["EventHandler"], [{"name": "h"}])
    assert server.log == ["PUT /api/event"] * 5
    assert failure.value.ambiguous
    assert failure.value.problem.message == (
        "PUT /api/event: no answer from the dev server (RemoteProtocolError: Server disconnected "
        "without sending a response.); tried 5 times"
    )
    assert failure.value.problem.hint == (
        "It may have been carried out all the same: plan again to see whether it landed."
    )


def test_an_update_that_never_reached_the_server_is_not_ambiguous() -> None:
    server = Server(PUT_api_metadata_workflow=[refused])
    with pytest.raises(ServerError) as failure:
        client(server).update_workflows([{"name": "w"}])
    assert server.log == ["PUT /api/metadata/workflow"] * 5
    assert not failure.value.ambiguous


def test_an_update_that_got_through_once_is_ambiguous_even_if_the_last_attempt_was_refused() -> (
    None
):
    server = Server(PUT_api_metadata_taskdefs=[lost, refused])
    with pytest.raises(ServerError) as failure:
        client(server).update(KINDS["TaskDef"], [{"name": "t"}])
    assert failure.value.ambiguous
    assert "ConnectError" in failure.value.problem.message  # the last failure is named


def test_the_upsert_post_of_task_definitions_is_retried() -> None:
    server = Server(POST_api_metadata_taskdefs=[lost, unavailable, answer(200)])
    client(server).create(KINDS["TaskDef"], [{"name": "t"}])
    assert server.log == ["POST /api/metadata/taskdefs"] * 3


def test_validation_is_retried_and_never_ambiguous() -> None:
    server = Server(POST_api_metadata_workflow_validate=[lost])
    with pytest.raises(ServerError) as failure:
        client(server).validate(KINDS["WorkflowDef"], {"name": "w"})
    assert server.log == ["POST /api/metadata/workflow/validate"] * 5
    assert not failure.value.ambiguous


class Store:
    """The server side of creates: what was stored, and answers that may be lost."""

    def __init__(self) -> None:
        self.workflows: dict[tuple[str, int], dict[str, Any]] = {}

    def store(self, request: httpx.Request) -> None:
        spec = json.loads(request.content)
        self.workflows[spec["name"], spec["version"]] = spec | {"createTime": 1, "tasks": []}

    def stored_then_lost(self, request: httpx.Request) -> httpx.Response:
        self.store(request)
        return lost(request)

    def created(self, request: httpx.Request) -> httpx.Response:
        if (found := json.loads(request.content))["name"] in {n for n, _ in self.workflows}:
            return httpx.Response(
                409, json={"message": f"Workflow with {found['name']}.1 already exists!"}
            )
        self.store(request)
        return httpx.Response(200)

    def get(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.path.rsplit("/", 1)[1], int(request.url.params["version"]))
        if key not in self.workflows:
            return httpx.Response(404, json={"message": "No such workflow found by name"})
        return httpx.Response(200, json=self.workflows[key])


SPEC = {"name": "w", "version": 1, "ownerApp": "metasync/p", "description": None}


def test_a_create_whose_answer_was_lost_is_read_back_and_not_sent_twice() -> None:
    store = Store()
    server = Server(POST_api_metadata_workflow=[store.stored_then_lost, store.created],
                    GET_api_metadata_workflow_w=[store.get])  # fmt: skip
    client(server).create_workflow(SPEC)
    assert server.log == ["POST /api/metadata/workflow", "GET /api/metadata/workflow/w"]


def test_a_create_that_did_not_land_is_sent_again_after_the_read_back() -> None:
    store = Store()
    server = Server(POST_api_metadata_workflow=[unavailable, lost, store.created],
                    GET_api_metadata_workflow_w=[store.get])  # fmt: skip
    client(server).create_workflow(SPEC)
    assert server.log == [
        "POST /api/metadata/workflow", "GET /api/metadata/workflow/w",
        "POST /api/metadata/workflow", "GET /api/metadata/workflow/w",
        "POST /api/metadata/workflow",
    ]  # fmt: skip
    assert ("w", 1) in store.workflows


def test_a_create_found_different_on_read_back_is_someone_elses() -> None:
    theirs = SPEC | {"description": "theirs", "createTime": 5}
    server = Server(
        POST_api_metadata_workflow=[lost], GET_api_metadata_workflow_w=[answer(200, theirs)]
    )
    with pytest.raises(ServerError) as failure:
        client(server).create_workflow(SPEC)
    assert failure.value.status == 409
    assert not failure.value.ambiguous
    assert failure.value.problem.message == (
        "POST /api/metadata/workflow -> 409: WorkflowDef w v1 is on the dev server, but not as sent "
        "(read back after an attempt whose answer was lost)"
    )
    assert server.log == ["POST /api/metadata/workflow", "GET /api/metadata/workflow/w"]


def test_a_timed_out_create_that_lands_late_is_recognised_by_its_409() -> None:
    store = Store()

    def timed_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def late(request: httpx.Request) -> httpx.Response:  # the first one lands now
        store.store(httpx.Request("POST", "/", json=SPEC))
        return store.created(request)

    server = Server(
        POST_api_metadata_workflow=[timed_out, late], GET_api_metadata_workflow_w=[store.get]
    )
    client(server).create_workflow(SPEC)
    assert server.log == [
        "POST /api/metadata/workflow", "GET /api/metadata/workflow/w",
        "POST /api/metadata/workflow", "GET /api/metadata/workflow/w",
    ]  # fmt: skip


def test_a_409_on_a_first_attempt_is_not_read_back() -> None:
    server = Server(POST_api_metadata_workflow=[answer(409, {"message": "exists"})])
    with pytest.raises(ServerError, match="-> 409: exists"):
        client(server).create_workflow(SPEC)
    assert server.log == ["POST /api/metadata/workflow"]


def test_a_create_that_never_landed_is_reported_not_landed_after_its_attempts() -> None:
    store = Store()
    server = Server(
        POST_api_metadata_workflow=[unavailable], GET_api_metadata_workflow_w=[store.get]
    )
    with pytest.raises(ServerError) as failure:
        client(server).create_workflow(SPEC)
    assert server.log == ["POST /api/metadata/workflow", "GET /api/metadata/workflow/w"] * 5
    assert not failure.value.ambiguous
    assert failure.value.problem.message == (
        "POST /api/metadata/workflow -> 503: busy; tried 5 times, and a read-back shows "
        "WorkflowDef w v1 is not there"
    )


def test_a_create_whose_read_back_fails_is_ambiguous() -> None:
    server = Server(POST_api_metadata_workflow=[lost], GET_api_metadata_workflow_w=[unavailable])
    with pytest.raises(ServerError) as failure:
        client(server).create_workflow(SPEC)
    assert failure.value.ambiguous
    assert server.log == ["POST /api/metadata/workflow"] + ["GET /api/metadata/workflow/w"] * 5
    assert failure.value.problem.message.startswith(
        "POST /api/metadata/workflow: no answer from the dev server (RemoteProtocolError: Server "
        "disconnected without sending a response.); tried once, and reading WorkflowDef w v1 back "
        "failed: GET /api/metadata/workflow/w -> 503: busy; tried 5 times"
    )


def test_an_event_handler_create_is_read_back_from_the_list() -> None:
    handler = {"name": "h", "event": "conductor:w:e", "actions": [{"action": "start_workflow"}]}
    live = [
        {"name": "other"},
        handler
        | {"active": True, "actions": [{"action": "start_workflow", "expandInlineJSON": False}]},
    ]
    server = Server(POST_api_event=[lost], GET_api_event=[answer(200, live)])
    client(server).create(KINDS["EventHandler"], [handler])
    assert server.log == ["POST /api/event", "GET /api/event"]


def test_a_delete_answered_404_after_a_lost_attempt_is_done() -> None:
    server = Server(DELETE_api_metadata_taskdefs_t=[lost, answer(404, {"message": "no such"})])
    client(server).delete(KINDS["TaskDef"], "t", None)
    assert server.log == ["DELETE /api/metadata/taskdefs/t"] * 2
    first = Server(DELETE_api_metadata_taskdefs_t=[answer(404, {"message": "no such"})])
    with pytest.raises(ServerError, match="-> 404: no such"):
        client(first).delete(KINDS["TaskDef"], "t", None)


def test_conductor_oss_500s_that_mean_conflict_or_missing_are_read_as_409_and_404() -> None:
    """conductor-oss answers 500 where 3.15 says 409 or 404 (docs/servers.md): by its message."""
    gone = answer(500, {"status": 500, "message": "No such task definition"})
    server = Server(DELETE_api_metadata_taskdefs_t=[lost, gone])
    client(server).delete(KINDS["TaskDef"], "t", None)  # the lost first attempt deleted it
    assert server.log == ["DELETE /api/metadata/taskdefs/t"] * 2
    with pytest.raises(ServerError, match="-> 500: No such task definition") as missing:
        client(Server(DELETE_api_metadata_taskdefs_t=[gone])).delete(KINDS["TaskDef"], "t", None)
    assert missing.value.status == 404
    assert (
        missing.value.problem.hint
        == "The object is not on the server (deleted meanwhile?): plan again."
    )
    exists = answer(500, {"status": 500, "message": "EventHandler with name h already exists!"})
    with pytest.raises(ServerError, match="-> 500: EventHandler with name h already") as taken:
        client(Server(POST_api_event=[exists])).create(KINDS["EventHandler"], [{"name": "h"}])
    assert taken.value.status == 409
    broken = answer(500, {"status": 500, "message": "JSON parse error: Unrecognized token"})
    with pytest.raises(ServerError) as other:
        client(Server(POST_api_event=[broken])).create(KINDS["EventHandler"], [{"name": "h"}])
    assert other.value.status == 500


def test_the_server_version_is_read_through_transient_failures() -> None:
    server = Server(GET_api_version=[unavailable, lost, answer(200, None)],
                    GET_api_admin_config=[answer(200, {"version": "3.15.0"})])  # fmt: skip
    assert client(server).server_version() == "3.15.0"
    assert server.log == ["GET /api/version"] * 3 + ["GET /api/admin/config"]
    assert client(Server(GET_api_version=[refused])).server_version() is None


def test_what_was_sent_holds_in_what_the_server_returns() -> None:
    sent = {"name": "w", "tasks": [{"a": 1, "b": None, "c": {}}], "flag": False}
    assert _holds(sent, sent | {"createTime": 3, "tasks": [{"a": 1, "d": 2}]})
    assert not _holds(sent, sent | {"flag": 0})  # false is not 0
    assert not _holds(sent, sent | {"tasks": [{"a": 1}, {"a": 2}]})
    assert not _holds(sent, sent | {"tasks": [{"a": 2}]})
    assert not _holds(sent, {"name": "w", "flag": False})


def test_a_page_that_is_not_the_api() -> None:
    html = httpx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"})
    with pytest.raises(ServerError) as failure:
        client(lambda r: html).objects(KINDS["EventHandler"])
    assert "the answer is not JSON (text/html)" in failure.value.problem.message
    assert (
        failure.value.problem.hint
        == "Is server.url the Conductor server's base URL (without /api)?"
    )


def test_orkes_token_is_fetched_sent_and_refreshed_when_expired() -> None:
    tokens = iter(["t1", "t2"])
    seen: list[tuple[str, str | None]] = []
    expired_once = [False]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token":
            assert json.loads(request.content) == {"keyId": "id", "keySecret": "secret"}
            return httpx.Response(200, json={"token": next(tokens)})
        seen.append((request.url.path, request.headers.get("X-Authorization")))
        if request.headers.get("X-Authorization") == "t1" and not expired_once[0]:
            expired_once[0] = True
            return httpx.Response(401, json={"error": "EXPIRED_TOKEN"})
        return httpx.Response(200, json=[])

    api = client(handler, key_id="id", key_secret="secret")
    assert api.objects(KINDS["TaskDef"]) == []
    assert api.objects(KINDS["WorkflowDef"]) == []
    assert seen == [
        ("/api/metadata/taskdefs", "t1"),
        ("/api/metadata/taskdefs", "t2"),
        ("/api/metadata/workflow", "t2"),
    ]


def test_bad_credentials() -> None:
    handler: Handler = lambda r: httpx.Response(401, json={"error": "INVALID_TOKEN"})  # noqa: E731
    with pytest.raises(ServerError) as failure:
        client(handler, key_id="id", key_secret="wrong").objects(KINDS["TaskDef"])
    assert failure.value.problem.message == (
        "POST /api/token -> 401: the server refused the key id and secret"
    )
    assert "wrong" not in str(failure.value)


def test_no_auth_header_without_credentials() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "X-Authorization" not in request.headers
        assert request.url.path != "/api/token"
        return httpx.Response(200, json=[])

    assert client(handler).objects(KINDS["TaskDef"]) == []


def test_a_wrong_base_url_is_named_as_such() -> None:
    handler: Handler = lambda r: httpx.Response(404, json={"status": 404, "error": "Not Found"})  # noqa: E731
    with pytest.raises(ServerError) as failure:
        client(handler).objects(KINDS["TaskDef"])
    assert failure.value.problem.message == (
        "GET /api/metadata/taskdefs -> 404: the dev server has no such endpoint"
    )
    assert (
        failure.value.problem.hint
        == "Is server.url the Conductor server's base URL (without /api)?"
    )


def test_only_2xx_is_success_and_a_redirect_is_never_followed() -> None:
    moved = answer(302, None, Location="https://login.example.test/sso")
    calls: list[Callable[[ConductorClient], object]] = [
        lambda c: c.update_workflows([{"name": "w"}]),
        lambda c: c.create_workflow({"name": "w", "version": 1}),
        lambda c: c.delete_workflow("w", 1),
        lambda c: c.objects(KINDS["WorkflowDef"]),
        lambda c: c.workflow("w"),
    ]
    for call in calls:
        server = Server(
            PUT_api_metadata_workflow=[moved], POST_api_metadata_workflow=[moved],
            DELETE_api_metadata_workflow_w_1=[moved], GET_api_metadata_workflow=[moved],
            GET_api_metadata_workflow_w=[moved],
        )  # fmt: skip
        with pytest.raises(ServerError) as refused_:
            call(client(server))
        assert refused_.value.status == 302
        assert "-> 302: the server redirects to https://login.example.test/sso; metasync does " in (
            refused_.value.problem.message
        )
        assert len(server.log) == 1  # neither followed nor retried
