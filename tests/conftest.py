"""Shared fixtures: a real Conductor server per test session, unique name prefixes, guards."""

from __future__ import annotations

import itertools
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import conductor_server
from flavours import FLAVOURS

ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count(1)


def start_server(
    name: str, tmp_path_factory: pytest.TempPathFactory, flavour: str, *args: str
) -> Iterator[conductor_server.Server]:
    """A real Conductor server of ``flavour`` on a free port, stopped at the end. Fails, never
    skips. ``args`` are server properties (``--conductor.app....=...``)."""
    try:
        server = conductor_server.start(
            name, log_dir=tmp_path_factory.mktemp(name), flavour=flavour, extra_args=args
        )
    except conductor_server.ServerError as exc:
        pytest.fail(f"cannot start the Conductor server the tests need:\n{exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session", params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    """The server flavour of this run of a server-facing test: "3.15" or "oss"."""
    return str(request.param)


@pytest.fixture(scope="session")
def conductor(
    flavour: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[conductor_server.Server]:
    """One real server per flavour for the whole run (tests run flavour by flavour)."""
    yield from start_server(f"pytest-{flavour}", tmp_path_factory, flavour)


@pytest.fixture(scope="session")
def conductor_b(
    flavour: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[conductor_server.Server]:
    """A second real server of the same flavour, started the first time a test needs two."""
    yield from start_server(f"pytest-b-{flavour}", tmp_path_factory, flavour)


@pytest.fixture
def api(conductor: conductor_server.Server) -> Iterator[httpx.Client]:
    """The session server's REST API, straight (for what a test does behind metasync's back)."""
    with httpx.Client(base_url=f"{conductor.url}/api", timeout=30) as client:
        yield client


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A name prefix unique to this test, for everything it creates on the shared server."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:40].strip("_")
    return f"t{next(_counter)}_{name}_"


@pytest.fixture(autouse=True)
def _no_stray_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection beyond loopback fails loudly (the tests talk to local servers only)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]) if isinstance(address, tuple) else str(address)
            if host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("127."):
                raise AssertionError(f"test tried to reach {address!r}; only loopback is allowed")
        real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def crash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Crash logs go to the test's own folder, never to the user's cache."""
    crash = tmp_path / "crash"
    monkeypatch.setenv("METASYNC_CRASH_DIR", str(crash))
    return crash


@pytest.fixture
def applied_example(tmp_path: Path, prefix: str, conductor: conductor_server.Server) -> Path:
    """The example under this test's prefix, applied to dev (the session server)."""
    from helpers import prefixed_example, run_cli  # here: helpers import git, which a test hides

    root = prefixed_example(tmp_path / "project", prefix, conductor.url)
    result = run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr
    return root


@pytest.fixture(scope="session")
def example_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository's example project as its own git repository, qa and prod pinned to its
    commit (the repository's pins name commits a shallow checkout may not have). Read-only."""
    from helpers import git  # here: helpers import git, which a test hides

    root = tmp_path_factory.mktemp("example-repo")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    for part in ("manifests", "environments"):
        shutil.copytree(ROOT / part, root / part)
    shutil.copy(ROOT / "metasync.yaml", root / "metasync.yaml")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the example")
    head = git(root, "rev-parse", "HEAD")
    for env in ("qa", "prod"):
        path = root / "environments" / env / "environment.yaml"
        path.write_text(re.sub(r"(?m)^(  ref: )[0-9a-f]{40}\b", rf"\g<1>{head}", path.read_text()))
    git(root, "commit", "-q", "-am", f"qa and prod run {head[:7]}")
    return root


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of this repository's example project, free to edit."""
    target = tmp_path / "project"
    target.mkdir()
    for part in ("manifests", "environments", "metasync.yaml"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            shutil.copy(source, target / part)
    return target
