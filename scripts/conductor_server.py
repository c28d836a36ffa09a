#!/usr/bin/env python3
"""Fetch, start and stop real Conductor servers on loopback for the demo and the tests.

Standard library only, so it runs before the project is installed:

    python scripts/conductor_server.py fetch                  # download the boot jar once (Maven)
    python scripts/conductor_server.py start dev=18081 qa=18082
    python scripts/conductor_server.py status
    python scripts/conductor_server.py stop --all

The jar is cached outside the repository, in ``$METASYNC_CACHE`` (default
``$XDG_CACHE_HOME/metasync`` or ``~/.cache/metasync``). Servers run with in-memory queues and
no sample data (``--conductor.queue.type=memory --loadSample=false``), so a fresh server is empty;
everything else keeps the server's defaults (ownerEmail is mandatory on 3.15, as in production).
``METASYNC_CONDUCTOR_JAVA_OPTS`` adds JVM options (default: a small heap, fast start-up).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

CONDUCTOR_VERSION = "3.15.0"
ARTIFACT = f"com.netflix.conductor:conductor-server:{CONDUCTOR_VERSION}:jar:boot"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
JAR_NAME = f"conductor-server-{CONDUCTOR_VERSION}-boot.jar"
MIN_JAVA = 17
DEFAULT_JAVA_OPTS = "-Xmx768m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
START_TIMEOUT_S = 180.0


class ServerError(Exception):
    """A problem a person can fix: missing tool, busy port, server that would not start."""


def cache_dir() -> Path:
    explicit = os.environ.get("METASYNC_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "metasync"


def jar_path() -> Path:
    return cache_dir() / "conductor" / JAR_NAME


def _require_tool(name: str, install_hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"{name} is not installed or not on PATH. {install_hint}")
    return found


def check_java() -> str:
    """Return the java executable, or explain what is missing."""
    java = _require_tool(
        "java",
        f"Install a Java {MIN_JAVA}+ runtime (Debian: apt-get install openjdk-17-jre-headless).",
    )
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if match is None:
        raise ServerError(
            f"could not read the Java version from `{java} -version`: {proc.stderr.strip()}"
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise ServerError(
            f"Conductor {CONDUCTOR_VERSION} needs Java {MIN_JAVA} or newer; {java} is Java {major}. "
            f"Install Java {MIN_JAVA} (Debian: apt-get install openjdk-17-jre-headless)."
        )
    return java


def ensure_jar() -> Path:
    """Download the Conductor boot jar with Maven into the cache, once."""
    target = jar_path()
    if target.is_file() and target.stat().st_size > 0:
        return target
    mvn = _require_tool("mvn", "Install Apache Maven (Debian: apt-get install maven).")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [
            mvn,
            "-B",
            "-q",
            f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={ARTIFACT}",
            f"-DoutputDirectory={tmp}",
        ]
        print(f"fetching {ARTIFACT} with Maven ...", file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp)
        fetched = Path(tmp) / JAR_NAME
        if proc.returncode != 0 or not fetched.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ServerError(
                f"Maven could not fetch {ARTIFACT} (exit {proc.returncode}). "
                f"Check that Maven Central is reachable.\n{tail}"
            )
        fetched.replace(target)
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def is_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return bool(resp.status == 200 and json.load(resp).get("healthy"))
    except (OSError, ValueError, urllib.error.URLError):
        return False


@dataclass
class Server:
    """One running server: how to reach it and where its log is."""

    name: str
    port: int
    pid: int
    log: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 20.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not _alive(self.pid):
                    return
                time.sleep(0.2)
            os.killpg(self.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return waited == 0


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(
    name: str,
    port: int | None = None,
    *,
    log_dir: Path | None = None,
    timeout: float = START_TIMEOUT_S,
    extra_args: Sequence[str] = (),
) -> Server:
    """Start one server and wait until /health answers; raise ServerError when it cannot."""
    java = check_java()
    jar = ensure_jar()
    port = free_port() if port is None else port
    if port_in_use(port):
        raise ServerError(
            f"port {port} for server {name!r} is already in use on 127.0.0.1. Stop what runs there "
            f"(`python scripts/conductor_server.py stop --all` if it is ours) or pick another port."
        )
    log_dir = log_dir or cache_dir() / "run"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    java_opts = os.environ.get("METASYNC_CONDUCTOR_JAVA_OPTS", DEFAULT_JAVA_OPTS).split()
    cmd = [
        java,
        *java_opts,
        "-jar",
        str(jar),
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--conductor.queue.type=memory",
        "--loadSample=false",
        *extra_args,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=log_dir,
        )
    server = Server(name=name, port=port, pid=proc.pid, log=str(log))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(
                f"Conductor server {name!r} exited with code {proc.returncode} before it was "
                f"healthy. Last lines of {log}:\n{_log_tail(log)}"
            )
        if is_healthy(port):
            return server
        time.sleep(0.5)
    server.stop()
    raise ServerError(
        f"Conductor server {name!r} on port {port} was not healthy after {timeout:.0f}s. "
        f"Last lines of {log}:\n{_log_tail(log)}"
    )


def start_many(ports: dict[str, int | None], **kwargs: object) -> list[Server]:
    """Start several servers in parallel (each takes ~15 s to boot) and wait for all."""
    check_java()
    ensure_jar()
    with ThreadPoolExecutor(max_workers=len(ports) or 1) as pool:
        futures = {name: pool.submit(start, name, port, **kwargs) for name, port in ports.items()}  # type: ignore[arg-type]
        servers: list[Server] = []
        errors: list[str] = []
        for future in futures.values():
            try:
                servers.append(future.result())
            except ServerError as exc:
                errors.append(str(exc))
    if errors:
        for server in servers:
            server.stop()
        raise ServerError("\n".join(errors))
    return servers


# -- state for the command line (the demo starts servers in one process and stops them in another)


def _state_file(name: str) -> Path:
    return cache_dir() / "run" / f"{name}.json"


def remember(server: Server) -> None:
    """Record a running server so that `stop` and `status` find it from another process."""
    _state_file(server.name).write_text(json.dumps(asdict(server)))


def _saved() -> Iterator[Server]:
    run = cache_dir() / "run"
    for path in sorted(run.glob("*.json")) if run.is_dir() else []:
        try:
            yield Server(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)


def _cmd_start(specs: Sequence[str]) -> None:
    ports: dict[str, int | None] = {}
    for spec in specs:
        name, _, port = spec.partition("=")
        if not name or (port and not port.isdigit()):
            raise ServerError(
                f"bad server spec {spec!r}: expected NAME or NAME=PORT, e.g. dev=18081"
            )
        ports[name] = int(port) if port else None
    for server in start_many(ports):
        remember(server)
        print(f"{server.name}: {server.url} (pid {server.pid}, log {server.log})")


def _cmd_stop(names: Sequence[str], stop_all: bool) -> None:
    for server in _saved():
        if stop_all or server.name in names:
            server.stop()
            _state_file(server.name).unlink(missing_ok=True)
            print(f"{server.name}: stopped")


def _cmd_status() -> None:
    for server in _saved():
        state = "healthy" if is_healthy(server.port) else "not answering"
        print(f"{server.name}: {server.url} pid {server.pid} {state}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the Conductor boot jar into the cache")
    p_start = sub.add_parser("start", help="start servers: NAME=PORT (PORT omitted: a free one)")
    p_start.add_argument("servers", nargs="+")
    p_stop = sub.add_parser("stop", help="stop servers started by `start`")
    p_stop.add_argument("servers", nargs="*")
    p_stop.add_argument("--all", action="store_true")
    sub.add_parser("status", help="list servers started by `start`")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            check_java()
            print(ensure_jar())
        elif args.command == "start":
            _cmd_start(args.servers)
        elif args.command == "stop":
            _cmd_stop(args.servers, args.all)
        else:
            _cmd_status()
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
