"""Sending one request to a Conductor server: retried when that is safe, a create whose answer
was lost read back before it is sent again (the rules are in client.py's docstring)."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from metasync.conductor.answers import json_of, message_of, not_json, refusal, status_of
from metasync.conductor.stream import ListParser
from metasync.errors import ServerError

Json = dict[str, Any]

#: the longest wait a Retry-After header can ask for
RETRY_AFTER_CAP_S = 10.0

#: answers worth another attempt; the 5xx ones may come after the request was carried out
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: the request never reached the server
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: the request was sent (perhaps in part) and no answer came back
_NO_ANSWER = (
    httpx.ReadError, httpx.WriteError, httpx.CloseError, httpx.RemoteProtocolError,
)  # fmt: skip


class Transport:
    """The plumbing under ConductorClient: attempts, waits, read-backs."""

    def __init__(self, http: httpx.Client, label: str, *, attempts: int, base_delay: float,
                 max_delay: float, sleep: Callable[[float], None] = time.sleep):  # fmt: skip
        self._http = http
        self.label = label
        self._attempts = max(1, attempts)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._jitter = random.Random()

    def _parsed(self, path: str, digest: Callable[[str], Any] | None = None) -> Any:
        """A GET's JSON answer, parsed as it arrives (conductor/stream.py): a list comes back as
        a ``Digested`` list when ``digest`` is given. An answer of 400 or more is an error."""
        sent = self._send("GET", path, sink=lambda: ListParser(digest))
        response = sent.answer
        if not response.is_success:
            raise refusal(f"GET /api{path}", response)
        parser = sent.tried.parsed
        if parser is None or not parser.received:
            return {}  # as json_of: no body
        try:
            return parser.result()
        except ValueError:
            raise not_json(response) from None

    def _list(self, method: str, path: str, digest: Callable[[str], Any] | None = None
              ) -> list[Json]:  # fmt: skip
        try:
            data = (
                self._parsed(path, digest) if method == "GET" else json_of(self._call(method, path))
            )
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
            raise refusal(request, response)
        data = json_of(response)
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
        response = sent.answer
        if method == "DELETE" and status_of(response) == 404 and sent.maybe_done:
            return response  # an earlier attempt whose answer was lost deleted it
        if not response.is_success:  # a redirect too: only 2xx is done
            raise refusal(f"{method} /api{path}", response)
        return response

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        idempotent: bool | None = None,
        read_back: _ReadBack | None = None,
        sink: Callable[[], ListParser] | None = None,
    ) -> _Sent:
        """The first answer that is not transient, within ``retry_attempts`` attempts: the one
        loop that decides whether to try again (client.py's docstring says when).

        A request that may have been carried out without an answer is sent again only when that
        is harmless: it is idempotent, or (a create, ``read_back``) reading the object back shows
        it is not there. There and as sent, the lost answer was a success: the result then holds
        no response.
        """
        request = f"{method} /api{path}"
        writes = method != "GET" and not path.endswith("/validate")
        if idempotent is None:
            # a POST says itself whether it may be sent twice (a kind's upsert, a dry run)
            idempotent = method in ("GET", "PUT", "DELETE")
        maybe_done = False  # an attempt may have been carried out without our knowing
        attempt = 0
        while True:
            attempt += 1
            tried = self._attempt(method, path, body, params, sink)
            if tried.response is not None and not tried.transient:
                return _Sent(tried.response, maybe_done, tried, attempt)
            exhausted = attempt >= self._attempts
            if tried.sent and not idempotent:  # sent twice, it could be carried out twice
                if read_back is None:
                    raise self._gave_up(request, tried, attempt, ambiguous=writes)
                self._sleep(self._delay(attempt, tried.retry_after))
                live = self._read_back(request, read_back, tried, attempt)
                if live is not None:
                    if _holds(body, live):
                        return _Sent(None, True, tried, attempt)
                    raise ServerError(
                        f"{request} -> 409: {read_back.what} is on {self.label}, but not as sent "
                        "(read back after an attempt whose answer was lost)",
                        status=409,
                        hint="The object was created meanwhile by someone else: plan again.",
                    )
                # not there; but a timed-out request may still be carried out
                maybe_done = tried.late
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
                continue  # it waited before reading back
            maybe_done = maybe_done or tried.sent
            if exhausted:
                raise self._gave_up(request, tried, attempt, ambiguous=writes and maybe_done)
            self._sleep(self._delay(attempt, tried.retry_after))

    def _create(self, path: str, spec: Json, read_back: _ReadBack) -> None:
        """POST a new object; when an attempt's answer is lost, read back before sending again."""
        request = f"POST /api{path}"
        sent = self._send("POST", path, spec, idempotent=False, read_back=read_back)
        response = sent.response
        if response is None:
            return  # an attempt whose answer was lost created it
        if status_of(response) == 409 and sent.maybe_done:
            live = self._read_back(request, read_back, sent.tried, sent.attempts)
            if live is not None and _holds(spec, live):
                return  # it is the earlier attempt that landed
        if not response.is_success:
            raise refusal(request, response)

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

    def _attempt(self, method: str, path: str, body: Any, params: dict[str, Any] | None,
                 sink: Callable[[], ListParser] | None = None) -> _Try:  # fmt: skip
        """One attempt: its answer, or what went wrong and whether it may have been carried out.
        ``sink``: a successful answer's body goes to a parser as it arrives (not kept)."""
        parsed = None
        try:
            if sink is None:
                response = self._http.request(method, path, json=body, params=params)
            else:
                response, parsed = self._streamed(method, path, params, sink)
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
            return _Try(response, "", sent=True, parsed=parsed)
        return _Try(
            response,
            message_of(response),
            sent=status != 429,  # a 429 turns the request away before it is carried out
            retry_after=_retry_after(response),
            hint="The server is limiting requests: try again later." if status == 429 else
            "The server (or a proxy in front of it) is unavailable: try again later.",
        )  # fmt: skip

    def _streamed(self, method: str, path: str, params: dict[str, Any] | None,
                  sink: Callable[[], ListParser]) -> tuple[httpx.Response, ListParser | None]:  # fmt: skip
        """The response; a 2xx one's body fed to ``sink()`` as it arrives (a body that is not
        JSON stops the reading: the parser says why), any other read whole."""
        request = self._http.build_request(method, path, params=params)
        response = self._http.send(request, stream=True)
        try:
            if not response.is_success:
                response.read()
                return response, None
            parser = sink()
            with contextlib.suppress(ValueError):  # not JSON: the parser's result() says so
                for chunk in response.iter_bytes():
                    parser.feed(chunk)
            return response, parser
        finally:
            response.close()

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

    #: None: a create's answer was lost, and reading it back showed it landed
    response: httpx.Response | None
    maybe_done: bool
    tried: _Try
    attempts: int

    @property
    def answer(self) -> httpx.Response:
        """The response (every request but a create has one)."""
        assert self.response is not None, "only a create lands without an answer"
        return self.response


@dataclass(frozen=True, slots=True)
class _Try:
    """One attempt: the answer (None when none came) and, for a transient failure, what it was."""

    response: httpx.Response | None
    failure: str  # "cannot reach ...", or the server's message for a transient status
    sent: bool  # it may have reached the server and been carried out
    late: bool = False  # it timed out: it may yet be carried out
    retry_after: float | None = None
    hint: str | None = None
    #: a streamed answer's body, parsed as it arrived
    parsed: ListParser | None = None

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
