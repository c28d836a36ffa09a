"""Webhook notifications of drift and apply results, received by a local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import conductor_server
import metasync.notify as notify_module
from helpers import run_cli

pytestmark = pytest.mark.server

SECRET_PATH = "/services/T000/B000/xoxb-not-for-logs"


class Receiver:
    """A webhook on loopback: records each JSON body; answers with the statuses it is given."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.paths.append(self.path)
                status = receiver._statuses.pop(0) if receiver._statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{SECRET_PATH}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(autouse=True)
def _quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify_module, "BACKOFF_S", 0.001)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def project(applied_example: Path) -> Path:
    return applied_example


def test_drift_is_posted_to_the_webhook_as_json(
    project: Path, prefix: str, receiver: Receiver
) -> None:
    path = project / "manifests" / "workflows" / "payment_processing.yaml"
    path.write_text(path.read_text().replace("timeoutSeconds: 3600", "timeoutSeconds: 5400", 1))
    result = run_cli("--project", str(project), "drift", "--env", "dev",
                     "--select", f"name={prefix}*", "--notify", receiver.url)  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == ""
    (body,) = receiver.bodies
    assert receiver.paths == [SECRET_PATH]
    server = body["metasync"]["environments"][0]["server"]
    assert body == {
        "text": "metasync drift: drift found\n"
        f"• dev ({server}): 1 not-applied\n"
        f"    not-applied: WorkflowDef {prefix}payment_processing v1",
        "metasync": {
            "kind": "drift",
            "formatVersion": 1,
            "environments": [{
                "environment": "dev", "server": server, "inSync": False, "error": None,
                "counts": {"live-edited": 0, "not-applied": 1, "missing-live": 0,
                           "unmanaged-live": 0},
                "drift": [{"kind": "WorkflowDef", "name": f"{prefix}payment_processing",
                           "version": 1, "type": "not-applied"}],
            }],
        },
    }  # fmt: skip


def test_an_environments_own_webhook_hears_of_its_applies(
    project: Path, prefix: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = project / "environments" / "dev" / "environment.yaml"
    env_file.write_text(env_file.read_text() + "notify: ['((env.METASYNC_TEST_HOOK))']\n")
    monkeypatch.setenv("METASYNC_TEST_HOOK", receiver.url)
    path = project / "manifests" / "taskdefs" / "payments.yaml"
    path.write_text(
        path.read_text().replace("  retryDelaySeconds: 2\n", "  retryDelaySeconds: 5\n", 1)
    )
    result = run_cli("--project", str(project), "apply", "--env", "dev", "--auto-approve")
    assert result.exit_code == 0, result.stderr
    (body,) = receiver.bodies
    assert body["text"].startswith("metasync apply on dev (http://127.0.0.1:")
    assert body["text"].endswith("): 1 of 1 landed")
    assert body["metasync"]["outcomes"] == [{
        "kind": "TaskDef", "name": f"{prefix}charge_payment", "version": None,
        "action": "update", "result": "landed",
    }]  # fmt: skip
    assert body["metasync"]["ok"] is True


def test_an_unreachable_webhook_does_not_fail_the_job_nor_show_its_url(
    project: Path, prefix: str
) -> None:
    closed = f"http://127.0.0.1:{conductor_server.free_port()}{SECRET_PATH}"
    result = run_cli("--project", str(project), "drift", "--env", "dev",
                     "--select", f"name={prefix}*", "--notify", closed)  # fmt: skip
    assert result.exit_code == 0  # in sync, notification or not
    assert result.stderr == (
        "warning: the notification to http://127.0.0.1/... was not delivered: ConnectError "
        "after 3 attempt(s)\n"
        "  The job's result stands; check the webhook URL and that it is reachable.\n"
    )
    assert "xoxb" not in result.stdout + result.stderr


def test_a_webhook_that_fails_is_retried_a_bounded_number_of_times() -> None:
    with Receiver(statuses=[503, 503, 503, 503]) as busy:
        failures = notify_module.send([busy.url], {"text": "hi"})
    assert len(busy.bodies) == 3
    assert [f.message for f in failures] == [
        "the notification to http://127.0.0.1/... was not delivered: it answered 503 after 3 "
        "attempt(s)"
    ]
    with Receiver(statuses=[503, 200]) as flaky:
        assert notify_module.send([flaky.url], {"text": "hi"}) == []
    assert len(flaky.bodies) == 2
    with Receiver(statuses=[404]) as wrong:
        failures = notify_module.send([wrong.url], {"text": "hi"})
    assert len(wrong.bodies) == 1  # a 404 will not get better
    assert "answered 404 after 1 attempt(s)" in failures[0].message
