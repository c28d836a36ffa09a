"""Servers that are not what they seem: metasync says what happened and writes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import conductor_server
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


class _Foreign(BaseHTTPRequestHandler):
    """Answers like Conductor, except that a workflow's version is not a number."""

    def do_GET(self) -> None:
        body: object = []
        if self.path in ("/api/metadata/workflow", "/api/metadata/workflow/latest-versions"):
            body = [{"name": "odd", "version": "two", "tasks": []}]
        elif self.path in ("/api/version", "/api/admin/config"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_answer_that_is_not_conductors_is_a_clear_error(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Foreign)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        root = prefixed_example(tmp_path / "project", "foreign_", url)
        planned = run_cli("--project", str(root), "plan", "--env", "dev")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert planned.exit_code == 1, planned.stderr
    assert planned.stderr.startswith(  # in place, a plan reads the newest versions
        "error: GET /api/metadata/workflow/latest-versions: item 0 of the answer has version "
        "'two', not an integer"
    ), planned.stderr
    assert "crash" not in planned.stderr


DAMAGED = [
    ("a_list", "[1, 2]", "is not a metasync saved plan (formatVersion 1)"),
    ("kind_a_list", '{"kind": ["metasync-plan"], "formatVersion": 1}', "is not a metasync saved plan"),
    ("environment_a_number", '{"kind": "metasync-plan", "formatVersion": 1, "environment": 5, '
     '"server": "s", "changes": []}', "is damaged: environment: Input should be a valid string"),
    ("version_a_map", '{"kind": "metasync-plan", "formatVersion": 1, "environment": "dev", '
     '"server": "s", "changes": [{"kind": "WorkflowDef", "name": "w", "version": {"a": 1}, '
     '"action": "update", "liveFingerprint": null, "desiredFingerprint": null}]}',
     "is damaged: changes[0].version: Input should be a valid integer"),
    ("not_json", "{", "cannot read the saved plan"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "text", "said"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_a_damaged_saved_plan_is_a_user_error(
    tmp_path: Path, label: str, text: str, said: str
) -> None:
    root = prefixed_example(tmp_path / "project", "damaged_", "http://127.0.0.1:9")
    saved = tmp_path / f"{label}.plan"
    saved.write_text(text)
    result = run_cli("--project", str(root), "apply", str(saved))
    assert result.exit_code == 1, result.stderr
    assert said in result.stderr
    assert "crash" not in result.stderr


@pytest.mark.server
def test_a_password_in_the_server_url_is_never_shown_nor_written(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    password = "s3cr3t-url-pw"
    url = conductor.url.replace("http://", f"http://admin:{password}@")
    root = prefixed_example(tmp_path / "project", prefix, url)
    saved = tmp_path / "dev.plan"
    outputs = [
        run_cli("--project", str(root), *args)
        for args in (
            ("plan", "--env", "dev", "--out", str(saved)),
            ("plan", "--env", "dev", "-o", "json"),
            ("plan", "--env", "dev", "-o", "markdown"),
            ("apply", "--env", "dev", "--auto-approve"),
            ("drift", "--env", "dev", "-o", "json"),
            ("status", "--env", "dev"),
        )
    ]
    assert outputs[3].exit_code == 0, outputs[3].stdout + outputs[3].stderr
    assert "admin:***@127.0.0.1" in outputs[0].stdout  # shown, with the password masked
    unreachable = root / "environments" / "qa" / "environment.yaml"
    unreachable.write_text(unreachable.read_text().replace(
        conductor.url.removeprefix("http://"), "127.0.0.1:9"))  # fmt: skip
    outputs.append(run_cli("--project", str(root), "plan", "--env", "qa"))
    assert outputs[-1].exit_code == 1
    assert "admin:***@127.0.0.1:9" in outputs[-1].stderr
    for result in outputs:
        assert password not in result.stdout + result.stderr
    written = [p for p in root.rglob("*") if p.is_file() and ".metasync" in p.parts]
    assert any("backups" in p.parts for p in written)
    for path in [*written, saved]:  # bytes: the cache files are binary (strings in UTF-8)
        assert password.encode() not in path.read_bytes(), path
