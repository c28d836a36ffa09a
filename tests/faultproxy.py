"""A fault-injecting reverse proxy for the tests: standard library only.

It sits between metasync and a Conductor server and, per request, either passes it through or
injects one fault:

* ``delay``: wait a while (0.2 to 0.5 s by default), then pass it through;
* ``503``: answer 503 without forwarding;
* ``close``: close the connection without an answer, before forwarding (nothing was carried out);
* ``lose``: forward it, let the server carry it out, then close the connection without returning
  the answer (the lost response that makes a create ambiguous);
* ``404``, ``405``: answer so without forwarding, as a server without that endpoint does (scripted
  with ``first`` only, never drawn);
* ``cut``: forward it, then send the status, the headers and half of the body, and close the
  connection (an answer cut short mid-body; scripted with ``first`` only).

Which one: ``first`` scripts the faults of the first requests of a kind (``"POST /api/event":
["lose", "503"]``, then the rest decides); otherwise a ``random.Random(seed)`` draws, with a share
per fault, for the requests ``match`` accepts (default: all; the others pass and draw nothing).
A seed gives the same faults to the same sequence of requests: metasync's writes go one at a
time, but a plan's reads (one per kind) go side by side and may arrive in either order. ``log``
and ``counts`` tell what was done::

    with FaultProxy(server_url, seed=7, shares={"503": 0.1, "lose": 0.1}) as proxy:
        ...  # point the client at proxy.url
    assert proxy.counts["lose"] > 0
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

Fault = Literal["pass", "delay", "503", "close", "lose", "404", "405", "cut"]
FAULTS: tuple[Fault, ...] = ("delay", "503", "close", "lose")
#: the faults after which the server has the request (it was forwarded)
FORWARDED: frozenset[Fault] = frozenset({"pass", "delay", "lose", "cut"})
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "host", "content-length"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the proxy received, and what it did with it."""

    method: str
    path: str  # without the query
    query: str
    fault: Fault


class FaultProxy:
    """A threaded reverse proxy to ``upstream`` on a free loopback port (a context manager)."""

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        shares: Mapping[Fault, float] | None = None,
        first: Mapping[str, Sequence[Fault]] | None = None,
        match: Callable[[str, str], bool] | None = None,
        delay: tuple[float, float] = (0.2, 0.5),
    ):
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._shares = dict(shares or {})
        if sum(self._shares.values()) > 1:
            raise ValueError(f"fault shares add up to more than 1: {self._shares}")
        self._first = {request: list(faults) for request, faults in (first or {}).items()}
        self._match = match
        self._delay = delay
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.log: list[Seen] = []
        self.counts: Counter[Fault] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def seen(self, method: str, path: str) -> list[Fault]:
        """What was done to each ``method path`` request, in order."""
        with self._lock:
            return [s.fault for s in self.log if s.method == method and s.path == path]

    def forwarded(self, method: str, path: str) -> int:
        """How many ``method path`` requests reached the server."""
        return sum(fault in FORWARDED for fault in self.seen(method, path))

    def decide(self, method: str, path: str, query: str) -> tuple[Fault, float]:
        """The fault for the next request, and how long a delay lasts."""
        with self._lock:
            fault: Fault = "pass"
            scripted = self._first.get(f"{method} {path}")
            if scripted:
                fault = scripted.pop(0)
            elif self._match is not None and not self._match(method, path):
                pass
            else:
                roll, bound = self._rng.random(), 0.0
                for kind in FAULTS:
                    bound += self._shares.get(kind, 0.0)
                    if roll < bound:
                        fault = kind
                        break
            wait = self._rng.uniform(*self._delay) if fault == "delay" else 0.0
            self.log.append(Seen(method, path, query, fault))
            self.counts[fault] += 1
        return fault, wait

    def forward(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream; 502 when the server cannot be reached (as proxies do)."""
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            connection.request(method, target, body=body or None, headers=dict(headers))
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        except OSError as exc:
            message = {"status": 502, "message": f"fault proxy: upstream unreachable ({exc})"}
            return 502, [("Content-Type", "application/json")], json.dumps(message).encode()
        finally:
            connection.close()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects

        def do_GET(self) -> None:
            self._handle()

        do_POST = do_PUT = do_DELETE = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path, _, query = self.path.partition("?")
            fault, wait = proxy.decide(self.command, path, query)
            if fault == "close":
                self.close_connection = True
                return
            if fault == "503":
                self._answer(503, [("Content-Type", "application/json")],
                             b'{"status":503,"message":"fault proxy: unavailable"}')  # fmt: skip
                return
            if fault in ("404", "405"):
                message = {"status": int(fault), "message": "fault proxy: no such endpoint"}
                self._answer(int(fault), [("Content-Type", "application/json")],
                             json.dumps(message).encode())  # fmt: skip
                return
            if fault == "delay":
                time.sleep(wait)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            status, answer_headers, answer = proxy.forward(self.command, self.path, headers, body)
            if fault == "lose":
                self.close_connection = True
                return
            self._answer(status, answer_headers, answer, cut=fault == "cut")

        def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes,
                    cut: bool = False) -> None:  # fmt: skip
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if cut:  # half of what the headers promise, then the connection closes
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler
