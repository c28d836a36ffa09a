"""A secret reaches the real server on apply, and its value appears in no output, log or error."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

import conductor_server
from helpers import run_cli, secret_project

pytestmark = pytest.mark.server

VARIABLE = "METASYNC_TEST_API_TOKEN"


def test_secret_reaches_the_server_and_never_the_output(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    monkeypatch: pytest.MonkeyPatch, crash_dir: Path,
) -> None:  # fmt: skip
    root = secret_project(tmp_path / "p", prefix, conductor.url, VARIABLE)
    first, second = f"s3cr3t-{uuid.uuid4().hex}", f"r0tated-{uuid.uuid4().hex}"
    monkeypatch.setenv(VARIABLE, first)
    outputs: list[str] = []

    def run(*args: str, expect: int = 0) -> str:
        result = run_cli("--project", str(root), *args)
        outputs.append(result.stdout + result.stderr)
        assert result.exit_code == expect, result.stdout + result.stderr
        return result.stdout

    assert "Bearer ((secrets.api_token))" in run("render", "--env", "dev")
    assert "((secrets.api_token))" in run("render", "--env", "dev", "-o", "json")
    for fmt in ("text", "json", "markdown"):
        assert "((secrets.api_token))" in run("plan", "--env", "dev", "-o", fmt)
    run("apply", "--env", "dev", "--auto-approve")
    run("plan", "--env", "dev", "--detailed-exitcode")  # resolved on both sides: no perpetual diff

    api = httpx.Client(base_url=f"{conductor.url}/api", timeout=30)
    live = api.get(f"/metadata/workflow/{prefix}billing", params={"version": 1}).json()
    headers = live["tasks"][0]["inputParameters"]["http_request"]["headers"]
    assert headers == {"Authorization": f"Bearer {first}", "X-Api-Key": first}

    # rotation: the plan shows that the secret changed without showing either value
    monkeypatch.setenv(VARIABLE, second)
    document = json.loads(
        run("plan", "--env", "dev", "-o", "json", "--detailed-exitcode", expect=2)
    )
    (change,) = document["changes"]
    assert change["action"] == "update"
    assert change["fields"] == [
        {
            "path": "tasks[ref=post_invoice].inputParameters.http_request.headers.Authorization",
            "before": "(sensitive)",
            "after": "Bearer ((secrets.api_token))",
        },
        {
            "path": "tasks[ref=post_invoice].inputParameters.http_request.headers.X-Api-Key",
            "before": "(sensitive)",
            "after": "((secrets.api_token))",
        },
    ]
    run("plan", "--env", "dev", "-o", "markdown")
    run("apply", "--env", "dev", "--auto-approve")
    live = api.get(f"/metadata/workflow/{prefix}billing", params={"version": 1}).json()
    assert live["tasks"][0]["inputParameters"]["http_request"]["headers"]["X-Api-Key"] == second

    # the before-images of both applies keep placeholders, never a value (not even the rotated
    # one, which is no longer known as a secret: it sat where git keeps one)
    backups = sorted((root / ".metasync" / "backups" / "dev").glob("*.json"))
    assert len(backups) == 2
    rotated = json.loads(backups[1].read_text())["objects"][0]["before"]
    assert rotated["tasks"][0]["inputParameters"]["http_request"]["headers"] == {
        "Authorization": "Bearer ((secrets.api_token))",
        "X-Api-Key": "((secrets.api_token))",
    }
    # a rollback writes the current secret there: nothing to restore
    assert "Nothing to restore" in run("rollback", "--env", "dev", "--auto-approve")

    # an error while the secret is in play: the server refuses the workflow at plan
    manifest = root / "manifests" / "billing.yaml"
    manifest.write_text(
        manifest.read_text()
        + "    - name: route\n      taskReferenceName: route\n      type: SWITCH\n"
        '      evaluatorType: javascript\n      expression: "$.x =="\n'
        "      decisionCases: {a: [{name: n, taskReferenceName: n, type: INLINE}]}\n"
    )
    assert "the server refuses" in run_cli("--project", str(root), "plan", "--env", "dev").stderr
    run("plan", "--env", "dev", expect=1)

    logs = [p.read_text() for p in crash_dir.glob("*")] if crash_dir.exists() else []
    logs += [p.read_text() for p in backups]
    for text in outputs + logs:
        assert first not in text
        assert second not in text
    assert len(outputs) == 12


def test_published_fingerprints_confirm_no_guess_of_a_secret(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    monkeypatch: pytest.MonkeyPatch, api: httpx.Client,
) -> None:  # fmt: skip
    """Fingerprints are in plan JSON and in the ownerApp stamp on the server: they are computed
    with the secret as its placeholder, so the same definition with any secret value gives the
    same fingerprint, and a word list tried against them confirms nothing."""
    root = secret_project(tmp_path / "p", prefix, conductor.url, VARIABLE)

    def desired_fingerprint() -> str:
        result = run_cli("--project", str(root), "plan", "--env", "dev", "-o", "json")
        assert result.exit_code == 0, result.stderr
        (change,) = [
            c for c in json.loads(result.stdout)["changes"] if c["name"].endswith("billing")
        ]
        return str(change["desiredFingerprint"])

    fingerprints = set()
    for guess in ("hunter2", "password1", "letmein"):
        monkeypatch.setenv(VARIABLE, guess)
        fingerprints.add(desired_fingerprint())
    assert len(fingerprints) == 1
    monkeypatch.setenv(VARIABLE, "hunter2")
    assert run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve").exit_code == 0
    live = api.get(f"/metadata/workflow/{prefix}billing").json()
    assert live["ownerApp"].endswith(fingerprints.pop())
    assert live["tasks"][0]["inputParameters"]["http_request"]["headers"]["X-Api-Key"] == "hunter2"
    result = run_cli("--project", str(root), "plan", "--env", "dev", "--detailed-exitcode")
    assert result.exit_code == 0, result.stdout  # in sync
    monkeypatch.setenv(VARIABLE, "rotated-value")  # the server still holds the old one
    result = run_cli("--project", str(root), "plan", "--env", "dev", "--detailed-exitcode")
    assert result.exit_code == 2, result.stdout  # a rotation is still a change to apply


def encodings(value: str) -> dict[str, str]:
    """The forms a value can take in an output: raw, Python repr, JSON, URL-encoded, base64."""
    return {
        "raw": value,
        "repr": repr(value)[1:-1],
        "json": json.dumps(value)[1:-1],
        "url": quote(value, safe=""),
        "base64": base64.b64encode(value.encode()).decode().rstrip("="),
    }


def test_no_secret_in_any_encoding_reaches_any_stream_or_file(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    monkeypatch: pytest.MonkeyPatch, crash_dir: Path,
) -> None:  # fmt: skip
    """Every command a pipeline runs, with a secret of awkward characters and a password in the
    server URL: no stream and no file any of them writes holds either, in any encoding."""
    secret = f's3c"r/et+&ü-{uuid.uuid4().hex[:8]}'
    password = f"url-pw-{uuid.uuid4().hex[:8]}"
    url = conductor.url.replace("http://", f"http://admin:{password}@")
    root = secret_project(tmp_path / "p", prefix, url, VARIABLE)
    monkeypatch.setenv(VARIABLE, secret)
    heard: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            heard.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=hook.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    notify = ("--notify", f"http://127.0.0.1:{hook.server_address[1]}/hook")
    mine = ("--select", f"name={prefix}*")
    out, saved = tmp_path / "exported", tmp_path / "dev.plan"
    commands = [
        ("validate",), ("render", "--env", "dev"), ("render", "--env", "dev", "-o", "json"),
        ("plan", "--env", "dev"), ("plan", "--env", "dev", "-o", "json"),
        ("plan", "--env", "dev", "-o", "markdown"), ("plan", "--env", "dev", "--out", str(saved)),
        ("apply", str(saved), *notify), ("drift", "--env", "dev", *notify),
        ("drift", "--env", "dev", "-o", "json"), ("drift", "--env", "dev", "-o", "markdown"),
        ("status",), ("export", "--env", "dev", "--out", str(out), *mine),
        ("rollback", "--env", "dev", "--auto-approve", *notify), ("unlock", "--env", "dev"),
    ]  # fmt: skip
    streams = []
    try:
        for args in commands:
            result = run_cli("--project", str(root), *args)
            assert result.exit_code in (0, 2), (args, result.stdout + result.stderr)
            streams.append(result.stdout + result.stderr)
    finally:
        hook.shutdown()
        hook.server_close()
        thread.join()
    assert len(heard) == 3  # apply, drift and rollback were told
    assert "1 of 1 change(s) landed." in streams[7]  # the secret reached the server
    assert "1 of 1 change(s) landed." in streams[13]  # and the rollback took it away again
    # the user's own environment.yaml holds the URL: not metasync's output (the export's copy is)
    written = [
        p for p in [*root.rglob("*"), *out.rglob("*"), saved, *crash_dir.glob("*")]
        if p.is_file() and p != root / "environments" / "dev" / "environment.yaml"
    ]  # fmt: skip
    assert (out / "environments" / "dev" / "environment.yaml") in written
    assert any(".metasync" in p.parts for p in written)  # backups, servers seen
    # binary files (the cache's) as text: a secret they held would show as its UTF-8 bytes
    texts = [*streams, *(h.decode() for h in heard),
             *(p.read_bytes().decode(errors="replace") for p in written)]  # fmt: skip
    for label, form in [*encodings(secret).items(), *encodings(password).items()]:
        for text in texts:
            assert form not in text, (label, text[:300])
