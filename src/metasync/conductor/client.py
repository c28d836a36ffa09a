"""The Conductor metadata API over httpx (reference/conductor-api.md §1, §6, §7).

The only module that talks HTTP. Reads are bulk (one request per kind); every failure becomes a
``ServerError`` naming the request, the status and the server's own message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Generator, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from metasync.errors import Problem, ServerError

Json = dict[str, Any]
TOKEN_TTL_S = 45 * 60  # the Orkes SDKs refresh proactively after 45 minutes


class LiveReader(Protocol):
    """What plan, drift and status may do with a server: read."""

    label: str
    url: str

    def server_version(self) -> str | None: ...
    def taskdefs(self) -> list[Json]: ...
    def workflows(self) -> list[Json]: ...
    def event_handlers(self) -> list[Json]: ...
    def validate_workflow(self, spec: Json) -> None: ...


class LiveWriter(LiveReader, Protocol):
    """What apply may do besides reading."""

    def create_taskdefs(self, specs: Sequence[Json]) -> None: ...
    def update_taskdef(self, spec: Json) -> None: ...
    def create_workflow(self, spec: Json) -> None: ...
    def update_workflows(self, specs: Sequence[Json]) -> None: ...
    def create_event_handler(self, spec: Json) -> None: ...
    def update_event_handler(self, spec: Json) -> None: ...
    def delete_taskdef(self, name: str) -> None: ...
    def delete_workflow(self, name: str, version: int) -> None: ...
    def delete_event_handler(self, name: str) -> None: ...


class OrkesAuth(httpx.Auth):
    """Orkes key/secret exchanged for a token (``X-Authorization``), refreshed when it expires."""

    requires_response_body = True

    def __init__(self, token_url: str, key_id: str, key_secret: str):
        self._token_url = token_url
        self._credentials = {"keyId": key_id, "keySecret": key_secret}
        self._token: str | None = None
        self._fetched_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None or time.monotonic() - self._fetched_at > TOKEN_TTL_S:
            yield from self._refresh()
        request.headers["X-Authorization"] = self._token or ""
        response = yield request
        if response.status_code in (401, 403) and "EXPIRED_TOKEN" in response.text:
            yield from self._refresh()
            request.headers["X-Authorization"] = self._token or ""
            yield request

    def _refresh(self) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield httpx.Request("POST", self._token_url, json=self._credentials)
        if response.status_code != 200:
            raise ServerError(
                f"POST {httpx.URL(self._token_url).path} -> {response.status_code}: the server "
                "refused the key id and secret",
                status=response.status_code,
                hint="Check the key id and secret variables named in the environment's server.auth.",
            )
        self._token = str(response.json().get("token", ""))
        self._fetched_at = time.monotonic()


class ConductorClient:
    """One environment's server. Implements LiveReader and LiveWriter."""

    def __init__(self, http: httpx.Client, label: str):
        self._http = http
        self.label = label
        self.url = str(http.base_url).removesuffix("/").removesuffix("/api")

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        label: str,
        timeout: float = 30.0,
        key_id: str | None = None,
        key_secret: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> ConductorClient:
        base = url.rstrip("/")
        auth = OrkesAuth(f"{base}/api/token", key_id, key_secret) if key_id and key_secret else None
        http = httpx.Client(
            base_url=f"{base}/api",
            timeout=timeout,
            auth=auth,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        return cls(http, label)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConductorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------------------------

    def server_version(self) -> str | None:
        """``3.15.0`` from /admin/config on 3.x, or conductor-oss's /version; None when unknown."""
        try:
            response = self._http.get("/version")
            if response.status_code == 200 and re.match(r"^\d+\.\d+", response.text.strip()):
                return response.text.strip()
            response = self._http.get("/admin/config")
            if response.status_code == 200:
                version = response.json().get("version")
                return str(version) if version else None
        except (httpx.HTTPError, ValueError):
            return None
        return None

    def taskdefs(self) -> list[Json]:
        return self._list("GET", "/metadata/taskdefs")

    def workflows(self) -> list[Json]:
        return self._list("GET", "/metadata/workflow")

    def event_handlers(self) -> list[Json]:
        return self._list("GET", "/event")

    def validate_workflow(self, spec: Json) -> None:
        """The server's own bean validation of one definition (nothing is written)."""
        self._call("POST", "/metadata/workflow/validate", body=spec)

    # -- writes ---------------------------------------------------------------------------------

    def create_taskdefs(self, specs: Sequence[Json]) -> None:
        if specs:
            self._call("POST", "/metadata/taskdefs", body=list(specs))

    def update_taskdef(self, spec: Json) -> None:
        self._call("PUT", "/metadata/taskdefs", body=spec)

    def create_workflow(self, spec: Json) -> None:
        self._call("POST", "/metadata/workflow", body=spec)

    def update_workflows(self, specs: Sequence[Json]) -> None:
        if not specs:
            return
        response = self._call("PUT", "/metadata/workflow", body=list(specs))
        errors = _json(response).get("bulkErrorResults") or {}
        if errors:
            raise ServerError(
                f"PUT /api/metadata/workflow: the server stored some definitions but not "
                f"{', '.join(sorted(errors))}",
                details=[Problem(f"{name}: {message}") for name, message in sorted(errors.items())],
                hint="Plan again to see what landed.",
            )

    def create_event_handler(self, spec: Json) -> None:
        self._call("POST", "/event", body=spec)

    def update_event_handler(self, spec: Json) -> None:
        self._call("PUT", "/event", body=spec)

    def delete_taskdef(self, name: str) -> None:
        self._call("DELETE", f"/metadata/taskdefs/{_segment(name)}")

    def delete_workflow(self, name: str, version: int) -> None:
        self._call("DELETE", f"/metadata/workflow/{_segment(name)}/{version}")

    def delete_event_handler(self, name: str) -> None:
        self._call("DELETE", f"/event/{_segment(name)}")

    # -- executions -----------------------------------------------------------------------------

    def running_executions(self, name: str, versions: Collection[int]) -> dict[int, list[str]]:
        """IDs of the running (or paused) executions of ``name``, for each of ``versions``.

        The server's ``?version=`` filter is ignored (reference §1.4): list the IDs by name, then
        read each execution's version.
        """
        ids = _json(self._call("GET", f"/workflow/running/{_segment(name)}"))
        found: dict[int, list[str]] = {v: [] for v in versions}
        for workflow_id in ids if isinstance(ids, list) else ():
            path = f"/workflow/{_segment(str(workflow_id))}?includeTasks=false"
            try:
                execution = _json(self._call("GET", path))
            except ServerError as exc:
                if exc.status == 404:  # finished and archived meanwhile
                    continue
                raise
            version = execution.get("workflowVersion") if isinstance(execution, dict) else None
            if version in found:
                found[version].append(str(workflow_id))
        return found

    # -- plumbing -------------------------------------------------------------------------------

    def _list(self, method: str, path: str) -> list[Json]:
        try:
            data = _json(self._call(method, path))
        except ServerError as exc:
            if exc.status != 404:
                raise
            raise ServerError(
                f"{method} /api{path} -> 404: {self.label} has no such endpoint",
                status=404,
                hint="Is server.url the Conductor server's base URL (without /api)?",
            ) from None
        if not isinstance(data, list):
            raise ServerError(
                f"{method} /api{path}: expected a JSON list from {self.label}, got "
                f"{type(data).__name__}",
                hint="Is server.url the Conductor server's base URL (without /api)?",
            )
        return data

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        request = f"{method} /api{path}"
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TimeoutException:
            raise ServerError(
                f"{request}: {self.label} did not answer within {self._http.timeout.read}s",
                hint="Check the server's health, or raise server.timeoutSeconds.",
            ) from None
        except httpx.TransportError as exc:
            raise ServerError(
                f"{request}: cannot reach {self.label} ({type(exc).__name__}: {exc})",
                hint="Is the server running, and is server.url in environment.yaml right?",
            ) from None
        if response.status_code >= 400:
            raise _refusal(request, response)
        return response


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise ServerError(
            f"{response.request.method} {response.request.url.path}: the answer is not JSON "
            f"({response.headers.get('content-type', 'no content type')})",
            hint="Is server.url the Conductor server's base URL (without /api)?",
        ) from None


def _refusal(request: str, response: httpx.Response) -> ServerError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or response.text.strip()[:300] or response.reason_phrase)
    details = [
        Problem(f"{_short_path(v.get('path', ''))}: {v.get('message', '')}")
        for v in body.get("validationErrors") or ()
        if isinstance(v, dict)
    ]
    hint = {
        400: "Fix the definition as the server says; `metasync validate` catches most of these offline.",
        401: "Check the key id and secret in server.auth.",
        403: "The credentials lack permission for this request.",
        404: "The object is not on the server (deleted meanwhile?): plan again.",
        409: "The object was created meanwhile by someone else: plan again.",
    }.get(status)
    if status >= 500:
        hint = (
            "A 500 on a metadata write usually means the server could not read the payload "
            "(an enum value or type it does not know); otherwise check the server's log."
        )
    return ServerError(
        f"{request} -> {status}: {message}", status=status, details=details, hint=hint
    )


def _segment(value: str) -> str:
    """One URL path segment (names may hold characters a path gives meaning to)."""
    return quote(value, safe="")


def _short_path(path: str) -> str:
    """``updateWorkflowDef.workflowDefList[0].tasks[1]`` -> ``workflowDefList[0].tasks[1]``."""
    return path.split(".", 1)[1] if "." in path else path
