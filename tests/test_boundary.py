"""The error boundary: exit codes of docs/cli.md, crash logs, no tracebacks."""

from __future__ import annotations

import base64
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from helpers import run_cli, write_project
from metasync.manifests.secrets import Secrets
from metasync.project import Project

ROOT = Path(__file__).resolve().parent.parent


def test_a_bug_exits_3_and_points_to_a_crash_log(
    monkeypatch: pytest.MonkeyPatch, crash_dir: Path
) -> None:
    def broken(self: Project, envs: object = None) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(Project, "validate", broken)
    result = run_cli("--project", str(ROOT), "validate")
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    logs = list(crash_dir.glob("metasync-*.log"))
    assert len(logs) == 1
    assert result.stderr == (
        "error: metasync hit a bug (KeyError); this is not your input's fault.\n"
        f"  crash log: {logs[0]}\n  Please report it with the crash log.\n"
    )
    log = logs[0].read_text()
    assert "Traceback (most recent call last)" in log
    assert "KeyError: 'boom'" in log
    assert "arguments: ['--project'" in log


def test_a_crash_log_hides_the_secrets_the_run_had_read(
    monkeypatch: pytest.MonkeyPatch, crash_dir: Path
) -> None:
    monkeypatch.setenv("METASYNC_TEST_CRASH_TOKEN", "tok-5ecret-value")
    Secrets.from_environment({"token": "METASYNC_TEST_CRASH_TOKEN"}, {"token"}, "env.yaml")

    def broken(self: Project, envs: object = None) -> None:
        raise ValueError("request failed with Authorization: Bearer tok-5ecret-value")

    monkeypatch.setattr(Project, "validate", broken)
    result = run_cli("--project", str(ROOT), "validate", "--env", "tok-5ecret-value")
    assert result.exit_code == 3
    (log,) = [p.read_text() for p in crash_dir.glob("metasync-*.log")]
    assert "ValueError: request failed with Authorization: Bearer ((secrets.token))" in log
    assert "'--env', '((secrets.token))'" in log
    assert "tok-5ecret-value" not in log + result.output


def test_a_crash_log_hides_every_encoding_of_a_secret(
    monkeypatch: pytest.MonkeyPatch, crash_dir: Path
) -> None:
    secret = 'pa"ss\\w0rd/ü+&=1'
    monkeypatch.setenv("METASYNC_TEST_CRASH_TOKEN", secret)
    Secrets.from_environment({"token": "METASYNC_TEST_CRASH_TOKEN"}, {"token"}, "env.yaml")
    forms = {
        "raw": secret,
        "repr": repr(secret)[1:-1],
        "json": json.dumps(secret)[1:-1],
        "url": quote(secret, safe=""),
        "url+": quote_plus(secret),
        "base64": base64.b64encode(secret.encode()).decode(),
        "basic": base64.b64encode(f"admin:{secret}".encode()).decode(),
    }

    def broken(self: Project, envs: object = None) -> None:
        raise ValueError(" | ".join(f"{label}={form}" for label, form in forms.items()))

    monkeypatch.setattr(Project, "validate", broken)
    result = run_cli("--project", str(ROOT), "validate")
    assert result.exit_code == 3
    (log,) = [p.read_text() for p in crash_dir.glob("metasync-*.log")]
    assert "ValueError: " in log
    for label, form in forms.items():
        assert f"{label}=" in log
        assert form not in log, label
    assert secret not in result.output


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Project, envs: object = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Project, "validate", interrupted)
    result = run_cli("--project", str(ROOT), "validate")
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted"


def test_usage_errors_exit_1_not_2() -> None:
    result = run_cli("render", "--env", "dev", "-o", "toml")
    assert result.exit_code == 1
    assert (
        "Invalid value for '-o' / '--output': 'toml' is not one of 'yaml', 'json'." in result.stderr
    )
    assert run_cli("render").exit_code == 1  # --env missing


def test_not_a_project(tmp_path: Path) -> None:
    result = run_cli("--project", str(tmp_path), "validate")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {tmp_path}: not a metasync project: there is no manifests/ folder\n"
        "  Pass --project the folder holding metasync.yaml and manifests/, run metasync inside "
        "it, or start one with `metasync init`.\n"
    )


def test_unknown_environment_suggests_one(tmp_path: Path) -> None:
    write_project(tmp_path, {})
    result = run_cli("--project", str(tmp_path), "render", "--env", "deev")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: environments/: unknown environment 'deev'; did you mean 'dev'?\n"
        "  Environments in this project: dev. Each is a folder environments/<name>/ with an "
        "environment.yaml.\n"
    )


def test_the_installed_command_runs_through_the_boundary(tmp_path: Path) -> None:
    metasync = Path(sys.executable).parent / "metasync"
    result = subprocess.run(
        [str(metasync), "--project", str(tmp_path), "validate"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    version = subprocess.run(
        [str(metasync), "--version"], capture_output=True, text=True, check=False
    )
    # the installed distribution's version (from git tags), never one written in the code
    expected = importlib.metadata.version("metasync")
    assert (version.returncode, version.stdout) == (0, f"metasync, version {expected}\n")


def test_a_url_is_shown_without_its_password() -> None:
    from metasync.errors import redact_url

    assert redact_url("http://admin:pass@host:8080/api") == "http://admin:***@host:8080/api"
    assert redact_url("https://token@host/") == "https://***@host/"
    assert redact_url("http://host:8080") == "http://host:8080"
    assert (
        redact_url("see http://a:b@x and https://c:d@y") == "see http://a:***@x and https://c:***@y"
    )


def test_crash_logs_go_to_the_user_cache_folder_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from metasync.cli.boundary import crash_dir

    monkeypatch.delenv("METASYNC_CRASH_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert crash_dir() == tmp_path / "cache" / "metasync" / "crash"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert crash_dir() == tmp_path / "home" / ".cache" / "metasync" / "crash"
    monkeypatch.setenv("METASYNC_CRASH_DIR", str(tmp_path / "here"))
    assert crash_dir() == tmp_path / "here"
