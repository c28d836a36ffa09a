"""Client error paths and auth that a real 3.15 server will not produce on demand (MockTransport).

The happy paths and the real server's own errors are covered against the real server elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from metasync.conductor.client import ConductorClient
from metasync.errors import ServerError

Handler = Callable[[httpx.Request], httpx.Response]


def client(
    handler: Handler, key_id: str | None = None, key_secret: str | None = None
) -> ConductorClient:
    return ConductorClient.connect(
        "http://conductor.test",
        label="the dev server",
        transport=httpx.MockTransport(handler),
        key_id=key_id,
        key_secret=key_secret,
    )


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


def test_connection_errors_and_timeouts() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ServerError) as failure:
        client(refuse).taskdefs()
    assert failure.value.problem.message == (
        "GET /api/metadata/taskdefs: cannot reach the dev server (ConnectError: connection refused)"
    )

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ServerError, match=r"did not answer within 30\.0s"):
        client(slow).workflows()


def test_a_page_that_is_not_the_api() -> None:
    html = httpx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"})
    with pytest.raises(ServerError) as failure:
        client(lambda r: html).event_handlers()
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
    assert api.taskdefs() == []
    assert api.workflows() == []
    assert seen == [
        ("/api/metadata/taskdefs", "t1"),
        ("/api/metadata/taskdefs", "t2"),
        ("/api/metadata/workflow", "t2"),
    ]


def test_bad_credentials() -> None:
    handler: Handler = lambda r: httpx.Response(401, json={"error": "INVALID_TOKEN"})  # noqa: E731
    with pytest.raises(ServerError) as failure:
        client(handler, key_id="id", key_secret="wrong").taskdefs()
    assert failure.value.problem.message == (
        "POST /api/token -> 401: the server refused the key id and secret"
    )
    assert "wrong" not in str(failure.value)


def test_no_auth_header_without_credentials() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "X-Authorization" not in request.headers
        assert request.url.path != "/api/token"
        return httpx.Response(200, json=[])

    assert client(handler).taskdefs() == []


def test_a_wrong_base_url_is_named_as_such() -> None:
    handler: Handler = lambda r: httpx.Response(404, json={"status": 404, "error": "Not Found"})  # noqa: E731
    with pytest.raises(ServerError) as failure:
        client(handler).taskdefs()
    assert failure.value.problem.message == (
        "GET /api/metadata/taskdefs -> 404: the dev server has no such endpoint"
    )
    assert (
        failure.value.problem.hint
        == "Is server.url the Conductor server's base URL (without /api)?"
    )
