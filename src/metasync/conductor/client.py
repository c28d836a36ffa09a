"""The Conductor metadata API over httpx (reference/conductor-api.md §1, §6, §7).

The only module that talks HTTP. Reads are bulk (one request per kind); every failure becomes a
``ServerError`` naming the request, the status and the server's own message.

Transient failures are retried, a bounded number of times: ``RETRY_ATTEMPTS`` attempts in all, the
waits between them starting at ``RETRY_BASE_DELAY_S`` and doubling up to ``RETRY_MAX_DELAY_S``,
with jitter (each wait is half to all of its step); a ``Retry-After`` in seconds is honoured, up
to ``RETRY_AFTER_CAP_S``. The client reads these module values when it is made (tests shrink them).

* Never reached the server (connect error or timeout), or turned away with 429: every request is
  tried again, since nothing was carried out.
* Sent, but no answer (read timeout, connection closed or reset), or 502/503/504: only idempotent
  requests are sent again: GET, PUT, DELETE, and the POSTs that are an upsert or a dry run
  (``/metadata/taskdefs``, ``/metadata/workflow/validate``). A DELETE answered 404 after such an
  attempt is done.
* The same for a create (POST ``/metadata/workflow``, ``/event``): the object is read back first.
  There and as sent: the create is done. Not there: it is sent again. There but different: someone
  else made it, reported like a 409.

Any other 4xx, and a 500, is reported at once. Only a 2xx is success: a redirect is an error naming
where it points, never followed (a login page or another server is not the API). When the attempts run out, ``ServerError.ambiguous``
says whether the request may have been carried out all the same (apply reports such an object
"unknown" until it reads the server back).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Collection, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from metasync.errors import Problem, ServerError, redact_url
from metasync.model.kinds import KINDS, Kind

Json = dict[str, Any]
TOKEN_TTL_S = 45 * 60  # the Orkes SDKs refresh proactively after 45 minutes

#: attempts in all for one request, the first included
RETRY_ATTEMPTS = 5
#: the wait after the first failed attempt; it doubles after each further one
RETRY_BASE_DELAY_S = 0.2
#: the longest step between two attempts (jitter takes up to half of it off)
RETRY_MAX_DELAY_S = 3.0
#: the longest wait a Retry-After header can ask for
RETRY_AFTER_CAP_S = 10.0

#: answers worth another attempt; the 5xx ones may come after the request was carried out
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: POSTs that may be sent twice: an upsert (reference §1.2) and a dry run
_IDEMPOTENT_POSTS = frozenset({"/metadata/taskdefs", "/metadata/workflow/validate"})
#: the request never reached the server
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: the request was sent (perhaps in part) and no answer came back
_NO_ANSWER = (
    httpx.ReadError, httpx.WriteError, httpx.CloseError, httpx.RemoteProtocolError,
)  # fmt: skip


class LiveReader(Protocol):
    """What plan, drift and status may do with a server: read."""

    label: str
    url: str

    def server_version(self) -> str | None: ...
    def objects(self, kind: Kind) -> list[Json] | None: ...


class LiveWriter(LiveReader, Protocol):
    """What apply may do besides reading."""

    def create(self, kind: Kind, specs: Sequence[Json]) -> None: ...
    def update(self, kind: Kind, specs: Sequence[Json]) -> None: ...
    def delete(self, kind: Kind, name: str, version: int | None) -> None: ...


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
    """One environment's server. Implements LiveReader and LiveWriter.

    ``retry_attempts``, ``retry_base_delay`` and ``retry_max_delay`` default to the module's
    ``RETRY_*`` values; ``sleep`` is how it waits between attempts.
    """

    def __init__(
        self,
        http: httpx.Client,
        label: str,
        *,
        retry_attempts: int | None = None,
        retry_base_delay: float | None = None,
        retry_max_delay: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._http = http
        self.label = label
        # as shown: in plans, drift, backups, messages (credentials in the URL never are)
        self.url = redact_url(str(http.base_url).removesuffix("/").removesuffix("/api"))
        self._attempts = max(1, RETRY_ATTEMPTS if retry_attempts is None else retry_attempts)
        self._base_delay = RETRY_BASE_DELAY_S if retry_base_delay is None else retry_base_delay
        self._max_delay = RETRY_MAX_DELAY_S if retry_max_delay is None else retry_max_delay
        self._sleep = sleep
        self._jitter = random.Random()

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
        retry_attempts: int | None = None,
        retry_base_delay: float | None = None,
        retry_max_delay: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
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
        return cls(
            http,
            label,
            retry_attempts=retry_attempts,
            retry_base_delay=retry_base_delay,
            retry_max_delay=retry_max_delay,
            sleep=sleep,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConductorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------------------------

    def server_version(self) -> str | None:
        """``3.15.0`` from /admin/config on 3.x, or conductor-oss's /version; None when unknown."""
        try:  # retried like any read: a transient failure must not pass for an older server
            response = self._send("GET", "/version").response
            if response.status_code == 200 and re.match(r"^\d+\.\d+", response.text.strip()):
                return response.text.strip()
            response = self._send("GET", "/admin/config").response
            if response.status_code == 200:
                version = _body(response).get("version")
                return str(version) if version else None
        except (ServerError, httpx.HTTPError):
            return None
        return None

    def objects(self, kind: Kind) -> list[Json] | None:
        """Every object of ``kind`` on the server, in full; None when the server has no such kind
        (an optional kind whose list answers 404: conductor 3.15 has no schedules)."""
        try:
            return self._list("GET", kind.endpoints.list)
        except ServerError as exc:
            if exc.status == 404 and kind.endpoints.optional:
                return None
            raise

    def taskdefs(self) -> list[Json]:
        return self._list("GET", "/metadata/taskdefs")

    def workflows(self) -> list[Json]:
        return self._list("GET", "/metadata/workflow")

    def event_handlers(self) -> list[Json]:
        return self._list("GET", "/event")

    def workflow(self, name: str, version: int | None = None) -> Json | None:
        """One workflow definition (the newest version by default); None when there is none."""
        query = f"?version={version}" if version is not None else ""
        try:
            found = _json(self._call("GET", f"/metadata/workflow/{_segment(name)}{query}"))
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise
        return found if isinstance(found, dict) else None

    def validate(self, kind: Kind, spec: Json) -> None:
        """The server's own validation of one object of ``kind`` (nothing is written)."""
        if kind.validate is not None:
            self._call("POST", kind.validate, body=spec, idempotent=True)

    def validate_workflow(self, spec: Json) -> None:
        self.validate(KINDS["WorkflowDef"], spec)

    # -- writes ---------------------------------------------------------------------------------

    def create(self, kind: Kind, specs: Sequence[Json]) -> None:
        """Create ``specs`` (one request, or one each) as the kind's endpoints say."""
        at = kind.endpoints
        if at.create_batch:
            if specs:
                self._call("POST", at.create, body=list(specs), idempotent=at.create_is_upsert)
            return
        for spec in specs:
            if at.create_is_upsert:
                self._call("POST", at.create, body=spec, idempotent=True)
            else:
                self._create(at.create, spec, self._read_back_of(kind, spec))

    def update(self, kind: Kind, specs: Sequence[Json]) -> None:
        at = kind.endpoints
        if at.update_batch:
            self._update_batch(at.update, specs)
            return
        for spec in specs:  # an update puts the whole object: safe to send twice
            self._call(at.update_method, at.update, body=spec, idempotent=True)

    def delete(self, kind: Kind, name: str, version: int | None) -> None:
        self._call("DELETE", _path(kind.endpoints.delete, name, version))

    def _read_back_of(self, kind: Kind, spec: Json) -> _ReadBack:
        """How to tell whether a create of ``spec`` whose answer was lost was carried out."""
        name = str(spec.get("name", ""))
        version = int(spec.get("version") or 1) if kind.versioned else None
        what = f"{kind.name} {name}" + (f" v{version}" if version is not None else "")
        get = kind.endpoints.get

        def read() -> Json | None:
            if get is None:  # no get-by-name (event handlers, reference §1.3): list them all
                listed = self._list("GET", kind.endpoints.list)
                return next((o for o in listed if o.get("name") == name), None)
            params = {"version": version} if version is not None else None
            response = self._send("GET", _path(get, name, version), params=params).response
            return None if _status(response) == 404 else self._object(response)

        return _ReadBack(what, read)

    def create_taskdefs(self, specs: Sequence[Json]) -> None:
        self.create(KINDS["TaskDef"], specs)

    def create_workflow(self, spec: Json) -> None:
        self.create(KINDS["WorkflowDef"], [spec])

    def update_workflows(self, specs: Sequence[Json]) -> None:
        self.update(KINDS["WorkflowDef"], specs)

    def delete_workflow(self, name: str, version: int) -> None:
        self.delete(KINDS["WorkflowDef"], name, version)

    def _update_batch(self, path: str, specs: Sequence[Json]) -> None:
        """One PUT of a list; the server may store some and not others (``bulkErrorResults``)."""
        if not specs:
            return
        response = self._call("PUT", path, body=list(specs))
        errors = _json(response).get("bulkErrorResults") or {}
        if errors:
            raise ServerError(
                f"PUT /api{path}: the server stored some definitions but not "
                f"{', '.join(sorted(errors))}",
                details=[Problem(f"{name}: {message}") for name, message in sorted(errors.items())],
                hint="Plan again to see what landed.",
            )

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

    def _object(self, response: httpx.Response) -> Json:
        request = f"{response.request.method} {response.request.url.path}"
        if not response.is_success:
            raise _refusal(request, response)
        data = _json(response)
        if not isinstance(data, dict):
            raise ServerError(
                f"{request}: expected a JSON object from {self.label}, got {type(data).__name__}",
                hint="Is server.url the Conductor server's base URL (without /api)?",
            )
        return data

    def _call(self, method: str, path: str, body: Any = None, *,
              idempotent: bool | None = None) -> httpx.Response:  # fmt: skip
        """One request, retried when that is safe; an answer of 400 or more is an error."""
        sent = self._send(method, path, body, idempotent=idempotent)
        response = sent.response
        if method == "DELETE" and _status(response) == 404 and sent.maybe_done:
            return response  # an earlier attempt whose answer was lost deleted it
        if not response.is_success:  # a redirect too: only 2xx is done
            raise _refusal(f"{method} /api{path}", response)
        return response

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> _Sent:
        """The first answer that is not transient, within ``retry_attempts`` attempts.

        A request that may have been carried out without an answer is sent again only when that
        is harmless (the module docstring says when).
        """
        request = f"{method} /api{path}"
        writes = method != "GET" and not path.endswith("/validate")
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE") or path in _IDEMPOTENT_POSTS
        maybe_done = False  # an attempt may have been carried out without our knowing
        attempt = 0
        while True:
            attempt += 1
            tried = self._attempt(method, path, body, params)
            if tried.response is not None and not tried.transient:
                return _Sent(tried.response, maybe_done)
            maybe_done = maybe_done or tried.sent
            if tried.sent and not idempotent:  # sent twice, it could be carried out twice
                raise self._gave_up(request, tried, attempt, ambiguous=writes)
            if attempt >= self._attempts:
                raise self._gave_up(request, tried, attempt, ambiguous=writes and maybe_done)
            self._sleep(self._delay(attempt, tried.retry_after))

    def _create(self, path: str, spec: Json, read_back: _ReadBack) -> None:
        """POST a new object; when an attempt's answer is lost, read back before sending again."""
        request = f"POST /api{path}"
        maybe_done = False  # an earlier attempt may have created it without our knowing
        attempt = 0
        while True:
            attempt += 1
            tried = self._attempt("POST", path, spec, None)
            response = tried.response
            if response is not None and not tried.transient:
                if _status(response) == 409 and maybe_done:
                    live = self._read_back(request, read_back, tried, attempt)
                    if live is not None and _holds(spec, live):
                        return  # it is the earlier attempt that landed
                if not response.is_success:
                    raise _refusal(request, response)
                return
            exhausted = attempt >= self._attempts
            if not tried.sent:
                if exhausted:
                    raise self._gave_up(request, tried, attempt, ambiguous=maybe_done)
                self._sleep(self._delay(attempt, tried.retry_after))
                continue
            self._sleep(self._delay(attempt, tried.retry_after))
            live = self._read_back(request, read_back, tried, attempt)
            if live is not None:
                if _holds(spec, live):
                    return
                raise ServerError(
                    f"{request} -> 409: {read_back.what} is on {self.label}, but not as sent "
                    "(read back after an attempt whose answer was lost)",
                    status=409,
                    hint="The object was created meanwhile by someone else: plan again.",
                )
            maybe_done = tried.late  # not there; but a timed-out request may still be carried out
            if exhausted:
                raise ServerError(
                    f"{tried.describe(request)}; {_tries(attempt)}, and a read-back shows "
                    f"{read_back.what} is not there",
                    status=tried.status,
                    hint=_AMBIGUOUS_HINT
                    if maybe_done
                    else "Nothing was written: apply again when the server is healthy.",
                    ambiguous=maybe_done,
                )

    def _read_back(self, request: str, read_back: _ReadBack, tried: _Try, attempt: int) -> Json | None:  # fmt: skip
        try:
            return read_back.read()
        except ServerError as exc:
            raise ServerError(
                f"{tried.describe(request)}; {_tries(attempt)}, and reading {read_back.what} back "
                f"failed: {exc.problem.message}",
                status=tried.status,
                hint=_AMBIGUOUS_HINT,
                ambiguous=True,
            ) from None

    def _attempt(self, method: str, path: str, body: Any, params: dict[str, Any] | None) -> _Try:
        """One attempt: its answer, or what went wrong and whether it may have been carried out."""
        try:
            response = self._http.request(method, path, json=body, params=params)
        except _NOT_SENT as exc:
            return _Try(None, f"cannot reach {self.label} ({type(exc).__name__}: {exc})",
                        sent=False, hint=_UNREACHABLE_HINT)  # fmt: skip
        except httpx.TimeoutException:  # ReadTimeout, WriteTimeout: it may still be carried out
            return _Try(None, f"{self.label} did not answer within {self._http.timeout.read}s",
                        sent=True, late=True,
                        hint="Check the server's health, or raise server.timeoutSeconds.")  # fmt: skip
        except _NO_ANSWER as exc:
            return _Try(None, f"no answer from {self.label} ({type(exc).__name__}: {exc})",
                        sent=True, hint=_BROKEN_HINT)  # fmt: skip
        except httpx.TransportError as exc:  # set-up (proxy, protocol): another try will not help
            raise ServerError(
                f"{method} /api{path}: cannot reach {self.label} ({type(exc).__name__}: {exc})",
                hint=_UNREACHABLE_HINT,
            ) from None
        status = response.status_code
        if status not in _RETRY_STATUSES:
            return _Try(response, "", sent=True)
        return _Try(
            response,
            _message(response),
            sent=status != 429,  # a 429 turns the request away before it is carried out
            retry_after=_retry_after(response),
            hint="The server is limiting requests: try again later." if status == 429 else
            "The server (or a proxy in front of it) is unavailable: try again later.",
        )  # fmt: skip

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff, half to all of each step (jitter); longer if Retry-After says so."""
        step = min(self._max_delay, self._base_delay * 2.0 ** (attempt - 1))
        delay = step / 2 + self._jitter.uniform(0, step / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_CAP_S))
        return delay

    def _gave_up(self, request: str, tried: _Try, attempts: int, *, ambiguous: bool) -> ServerError:
        return ServerError(
            f"{tried.describe(request)}; {_tries(attempts)}",
            status=tried.status,
            hint=_AMBIGUOUS_HINT if ambiguous else tried.hint,
            ambiguous=ambiguous,
        )


_UNREACHABLE_HINT = "Is the server running, and is server.url in environment.yaml right?"
_BROKEN_HINT = (
    "The connection broke before an answer came: check the server's health, and any proxy or "
    "load balancer in front of it."
)
_AMBIGUOUS_HINT = "It may have been carried out all the same: plan again to see whether it landed."


@dataclass(frozen=True, slots=True)
class _ReadBack:
    """How to tell whether a create whose answer was lost was carried out."""

    what: str  # "WorkflowDef x v1"
    read: Callable[[], Json | None]  # the live object, or None when it is not there


@dataclass(frozen=True, slots=True)
class _Sent:
    """The answer to a request, and whether an earlier attempt may have been carried out."""

    response: httpx.Response
    maybe_done: bool


@dataclass(frozen=True, slots=True)
class _Try:
    """One attempt: the answer (None when none came) and, for a transient failure, what it was."""

    response: httpx.Response | None
    failure: str  # "cannot reach ...", or the server's message for a transient status
    sent: bool  # it may have reached the server and been carried out
    late: bool = False  # it timed out: it may yet be carried out
    retry_after: float | None = None
    hint: str | None = None

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.status_code

    @property
    def transient(self) -> bool:
        return self.response is None or self.response.status_code in _RETRY_STATUSES

    def describe(self, request: str) -> str:
        """``GET /api/x -> 503: message`` or ``GET /api/x: cannot reach ...``."""
        if self.response is None:
            return f"{request}: {self.failure}"
        return f"{request} -> {self.response.status_code}: {self.failure}"


def _tries(attempts: int) -> str:
    return "tried once" if attempts == 1 else f"tried {attempts} times"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None  # an HTTP date is not honoured


def _holds(sent: Any, live: Any) -> bool:
    """Everything that was sent is in ``live``, which may add what the server fills in.

    A null or empty value that was sent matches one the server leaves out.
    """
    if isinstance(sent, dict):
        return isinstance(live, dict) and all(
            _holds(value, live[key]) if key in live else value in (None, {}, [])
            for key, value in sent.items()
        )
    if isinstance(sent, list):
        return (
            isinstance(live, list)
            and len(sent) == len(live)
            and all(_holds(a, b) for a, b in zip(sent, live, strict=True))
        )
    if isinstance(sent, bool) or isinstance(live, bool):
        return sent is live
    return bool(sent == live)


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


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message(response: httpx.Response) -> str:
    """The server's own message in an error answer."""
    body = _body(response)
    return str(body.get("message") or response.text.strip()[:300] or response.reason_phrase)


#: conductor-oss answers 500 where 3.15 says 409 or 404 (docs/servers.md): told by the message
_CONFLICT = re.compile(r"already exists", re.I)
_MISSING = re.compile(r"\b(not found|no such)\b", re.I)


def _status(response: httpx.Response) -> int:
    """The status as 3.15 would give it: a conductor-oss 500 that says "already exists" is a 409,
    one that says "not found" or "no such" a 404."""
    status = response.status_code
    if status == 500:
        message = _message(response)
        if _CONFLICT.search(message):
            return 409
        if _MISSING.search(message):
            return 404
    return status


def _refusal(request: str, response: httpx.Response) -> ServerError:
    status = _status(response)
    if response.is_redirect or 300 <= status < 400:  # never followed: nothing was carried out
        location = redact_url(response.headers.get("Location", "nowhere"))
        return ServerError(
            f"{request} -> {status}: the server redirects to {location}; metasync does not follow "
            "redirects (nothing was written)",
            status=status,
            hint="Set server.url to the Conductor server itself (often the redirect's target, "
            "without /api).",
        )
    body = _body(response)
    message = _message(response)
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
        f"{request} -> {response.status_code}: {message}", status=status, details=details, hint=hint
    )


def _path(template: str, name: str, version: int | None) -> str:
    """A kind's endpoint with ``{name}`` (one path segment) and ``{version}`` filled in."""
    return template.format(name=_segment(name), version=version if version is not None else 1)


def _segment(value: str) -> str:
    """One URL path segment (names may hold characters a path gives meaning to)."""
    return quote(value, safe="")


def _short_path(path: str) -> str:
    """``updateWorkflowDef.workflowDefList[0].tasks[1]`` -> ``workflowDefList[0].tasks[1]``."""
    return path.split(".", 1)[1] if "." in path else path
