"""The server script: clear errors when a tool is missing, and a real server that starts empty."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import conductor_server

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "conductor_server.py"


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
    )


def no_java_but(path: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a machine whose only Java is what ``path`` (a PATH) holds."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "METASYNC_JAVA")}
    return env | {"PATH": path, "METASYNC_CACHE": str(tmp_path / "cache"),
                  "METASYNC_JVM_DIR": str(tmp_path / "no-jvm")}  # fmt: skip


def test_missing_java_is_explained(tmp_path: Path) -> None:
    env = no_java_but(str(tmp_path), tmp_path)
    result = run_script("fetch", "--flavour", "3.15", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "error: java is not installed or not on PATH. Install a Java 17+ runtime "
        "(Debian: apt-get install openjdk-17-jre-headless).\n"
    )


def test_missing_maven_is_explained_when_the_jar_is_not_cached(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = shutil.which("java")
    assert java is not None
    (bin_dir / "java").symlink_to(java)
    env = no_java_but(str(bin_dir), tmp_path)
    result = run_script("fetch", "--flavour", "3.15", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "error: mvn is not installed or not on PATH. Install Apache Maven "
        "(Debian: apt-get install maven).\n"
    )


def test_old_java_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    env = no_java_but(str(tmp_path), tmp_path)
    result = run_script("fetch", "--flavour", "3.15", env=env)
    assert result.returncode == 1
    assert "Conductor 3.15.0 needs Java 17 or newer; found: " in result.stderr
    assert f"{fake} (Java 11)" in result.stderr


def test_busy_port_is_refused_before_starting() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(conductor_server.ServerError, match=f"port {port} .* already in use"):
            conductor_server.start("busy", port)


def test_bad_server_spec(tmp_path: Path) -> None:
    result = run_script("start", "dev=abc", env={**os.environ, "METASYNC_CACHE": str(tmp_path)})
    assert result.returncode == 1
    assert "bad server spec 'dev=abc': expected NAME or NAME=PORT" in result.stderr


@pytest.mark.server
def test_the_session_server_is_healthy_and_has_no_sample_data(
    conductor: conductor_server.Server, flavour: str
) -> None:
    assert conductor_server.is_healthy(conductor.port)
    api = httpx.Client(base_url=f"{conductor.url}/api", timeout=30)
    taskdefs = {t["name"] for t in api.get("/metadata/taskdefs").json()}
    workflows = {w["name"] for w in api.get("/metadata/workflow").json()}
    assert "task_0" not in taskdefs  # loadSample=true would register task_0..task_39
    assert "kitchensink" not in workflows
    assert conductor.flavour == flavour
    version = api.get("/version")
    assert (
        (version.status_code, version.text) == (200, "3.32.3")
        if flavour == "oss"
        else (version.status_code == 404)
    )
    response = api.post("/metadata/taskdefs", json=[{"name": "no_owner_email"}])
    if flavour == "3.15":  # ownerEmail stays mandatory, as on a production 3.15 server
        assert response.status_code == 400
        assert "ownerEmail cannot be empty" in response.text
    else:  # conductor-oss does not ask for one
        assert response.status_code == 200


def test_server_tests_fail_not_skip_when_no_server_can_start(tmp_path: Path) -> None:
    """Without Java the session fixture errors every server test; nothing is skipped."""
    root = Path(__file__).resolve().parent.parent
    env = no_java_but(str(tmp_path), tmp_path) | {"METASYNC_TEST_FLAVOURS": "3.15"}
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
            "tests/test_conductor_server.py::test_the_session_server_is_healthy_and_has_no_sample_data",
        ],
        cwd=root, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "cannot start the Conductor server the tests need" in result.stdout
    assert "java is not installed or not on PATH" in result.stdout
    assert "1 error" in result.stdout
    assert "skipped" not in result.stdout
