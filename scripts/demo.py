#!/usr/bin/env python3
"""The demo: real dev, qa and prod Conductor servers, and the example project validated and rendered.

Run it with `make demo` (which installs metasync and fetches the server first). The servers listen
on the ports named in environments/*/environment.yaml and are stopped at the end (`--keep` leaves
them running; `python scripts/conductor_server.py stop --all` stops them later).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import yaml

import conductor_server

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("dev", "qa", "prod")


def step(title: str) -> None:
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    print(f"\n{bold}== {title}{plain}", flush=True)


def differences(before: object, after: object, path: str = "") -> list[str]:
    """`path: before -> after` for every value that differs (demo output only)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            line
            for key in dict.fromkeys([*before, *after])
            for line in differences(
                before.get(key), after.get(key), f"{path}.{key}" if path else key
            )
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            line
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for line in differences(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [f"{path}: {json.dumps(before)} -> {json.dumps(after)}"]


def metasync(*args: str, show: int | None = None) -> str:
    """Run the installed CLI as a user would, echo the command, and return its output."""
    exe = shutil.which("metasync") or str(Path(sys.executable).parent / "metasync")
    print(f"$ metasync {' '.join(args)}", flush=True)
    result = subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"demo failed: `metasync {' '.join(args)}` exited {result.returncode}")
    lines = result.stdout.splitlines()
    shown = lines if show is None else lines[:show]
    if shown:
        print("\n".join(shown))
    if show and len(lines) > show:
        print(f"... ({len(lines) - show} more lines)")
    return result.stdout


def server_ports() -> dict[str, int]:
    ports = {}
    for env in ENVIRONMENTS:
        config = yaml.safe_load((ROOT / "environments" / env / "environment.yaml").read_text())
        url = urlparse(config["server"]["url"])
        if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
            raise SystemExit(f"demo: {env}'s server.url must be a loopback URL with a port")
        ports[env] = url.port
    return ports


def definitions_on(server: conductor_server.Server) -> tuple[int, int, int]:
    def count(path: str) -> int:
        with urllib.request.urlopen(f"{server.url}/api{path}", timeout=10) as resp:
            return len(json.load(resp))

    return count("/metadata/taskdefs"), count("/metadata/workflow"), count("/event")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the servers running")
    args = parser.parse_args()

    step("Start a real Conductor 3.15.0 server for dev, qa and prod")
    ports = server_ports()
    for env, port in ports.items():
        if conductor_server.port_in_use(port):
            raise SystemExit(
                f"demo: port {port} ({env}) is in use. Stop what runs there, e.g. "
                "`python scripts/conductor_server.py stop --all` after an earlier `--keep`."
            )
    servers = conductor_server.start_many(dict(ports.items()))
    try:
        for server in servers:
            taskdefs, workflows, handlers = definitions_on(server)
            print(
                f"{server.name:5} {server.url}  healthy; holds {taskdefs} task defs, "
                f"{workflows} workflows, {handlers} event handlers"
            )

        step("Validate the example project offline, as every environment sees it")
        metasync("validate")

        step("Render dev: the desired state, variables resolved (first lines)")
        metasync("render", "--env", "dev", show=30)

        step("Render qa and prod as JSON, and show how prod differs from qa")
        rendered = {
            env: json.loads(metasync("render", "--env", env, "-o", "json", show=0))
            for env in ("qa", "prod")
        }
        for env, document in rendered.items():
            kinds: dict[str, int] = {}
            for resource in document["resources"]:
                kinds[resource["kind"]] = kinds.get(resource["kind"], 0) + 1
            print(f"{env}: formatVersion {document['formatVersion']}, {kinds}")
        specs = {
            env: {f"{r['kind']} {r['name']}": r["spec"] for r in document["resources"]}
            for env, document in rendered.items()
        }
        changed = [
            f"{title}  {line}"
            for title in specs["qa"]
            for line in differences(specs["qa"][title], specs["prod"].get(title))
        ]
        print(
            "\n".join(changed[:12])
            + (f"\n... ({len(changed) - 12} more)" if len(changed) > 12 else "")
        )
        print(f"({len(changed)} values differ between qa and prod, all from their vars)")

        step("Done")
        print("The three servers are real and empty; the project above is what they will hold.")
    finally:
        if args.keep:
            for server in servers:
                conductor_server.remember(server)
            print("servers left running: python scripts/conductor_server.py stop --all")
        else:
            for server in servers:
                server.stop()
            print("servers stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
