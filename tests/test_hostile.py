"""Servers that are not what they seem: metasync says what happened and writes nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import prefixed_example, run_cli


class _Redirect(BaseHTTPRequestHandler):
    """Answers every request with a redirect to a login page, as an SSO proxy would."""

    seen: list[str]

    def _redirect(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(302)
        self.send_header("Location", "https://login.example.test/sso")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = _redirect

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def redirecting() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Redirect,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_redirecting_server_is_an_error_never_a_success(
    tmp_path: Path, redirecting: tuple[str, list[str]]
) -> None:
    url, seen = redirecting
    root = prefixed_example(tmp_path / "project", "hostile_", url)
    applied = run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert applied.exit_code == 1
    assert "landed" not in applied.stdout
    assert "-> 302: the server redirects to https://login.example.test/sso" in applied.stderr
    assert not [r for r in seen if not r.startswith("GET ")]  # nothing was written
    unlocked = run_cli("--project", str(root), "unlock", "--env", "dev")
    assert unlocked.exit_code == 1
    assert "removed the lock" not in unlocked.stdout
    assert "-> 302: the server redirects to" in unlocked.stderr
    assert len(seen) < 10  # asked once or twice, not a thousand times
