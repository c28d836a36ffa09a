#!/usr/bin/env python3
"""The demo: real dev, qa and prod Conductor servers; the example project validated, planned,
applied, rolled back by revision and promoted dev -> qa through a reviewed, saved plan.

Run it with `make demo` (which installs metasync and fetches the server first). The servers listen
on the ports named in environments/*/environment.yaml and are stopped at the end (`--keep` leaves
them running; `python scripts/conductor_server.py stop --all` stops them later).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import yaml

import conductor_server

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("dev", "qa", "prod")
#: the demo works on a copy of the example project in its own git repository (set in main)
WORK = ROOT


def git(*args: str, quiet: bool = False) -> str:
    if not quiet:
        print(f"$ git {' '.join(args)}", flush=True)
    result = subprocess.run(["git", *args], cwd=WORK, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def make_repository(target: Path) -> None:
    """The example project, copied into a new git repository with one commit."""
    for part in ("manifests", "environments"):
        shutil.copytree(ROOT / part, target / part)
    shutil.copy(ROOT / "metasync.yaml", target / "metasync.yaml")
    git("init", "-q", "-b", "main", quiet=True)
    git("config", "user.name", "metasync demo", quiet=True)
    git("config", "user.email", "demo@example.com", quiet=True)
    git("add", "-A", quiet=True)
    git("commit", "-q", "-m", "the example project", quiet=True)


def pin(env: str, commit: str) -> None:
    path = WORK / "environments" / env / "environment.yaml"
    path.write_text(re.sub(r"(?m)^  ref: .*$", f"  ref: {commit}", path.read_text()))


def step(title: str) -> None:
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    print(f"\n{bold}== {title}{plain}", flush=True)


def metasync(*args: str, show: int | None = None, expect: int = 0) -> str:
    """Run the installed CLI as a user would, echo the command, and return its output."""
    exe = shutil.which("metasync") or str(Path(sys.executable).parent / "metasync")
    print(f"$ metasync {' '.join(args)}", flush=True)
    result = subprocess.run([exe, *args], cwd=WORK, capture_output=True, text=True, check=False)
    sys.stderr.write(result.stderr)
    if result.returncode != expect:
        sys.stdout.write(result.stdout)
        raise SystemExit(
            f"demo failed: `metasync {' '.join(args)}` exited {result.returncode}, not {expect}"
        )
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


def edit_live(server: conductor_server.Server) -> None:
    """Change one nested task on the server behind git's back, through the REST API."""
    url = f"{server.url}/api/metadata/workflow/order_fulfillment?version=1"
    with urllib.request.urlopen(url, timeout=10) as resp:
        workflow = json.load(resp)
    workflow["tasks"][1]["forkTasks"][0][0]["loopOver"][0]["retryCount"] = 7
    request = urllib.request.Request(
        f"{server.url}/api/metadata/workflow",
        data=json.dumps([workflow]).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    print("PUT /api/metadata/workflow: tasks[ref=pick].retryCount = 7 on dev")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the servers running")
    parser.add_argument(
        "--flavour", choices=list(conductor_server.FLAVOURS),
        default=os.environ.get("CONDUCTOR_FLAVOUR") or conductor_server.DEFAULT_FLAVOUR,
        help="3.15 (Conductor 3.15.0, the default) or oss (conductor-oss 3.32.3); "
        "default $CONDUCTOR_FLAVOUR",
    )  # fmt: skip
    args = parser.parse_args()

    kind = conductor_server.FLAVOURS[args.flavour]
    name = "Conductor 3.15.0" if kind.name == "3.15" else f"conductor-oss {kind.version}"
    step(f"Start a real {name} server for dev, qa and prod")
    ports = server_ports()
    for env, port in ports.items():
        if conductor_server.port_in_use(port):
            raise SystemExit(
                f"demo: port {port} ({env}) is in use. Stop what runs there, e.g. "
                "`python scripts/conductor_server.py stop --all` after an earlier `--keep`."
            )
    servers = conductor_server.start_many(dict(ports.items()), flavour=args.flavour)
    global WORK  # noqa: PLW0603 - the demo's working copy, for the helpers above
    WORK = Path(tempfile.mkdtemp(prefix="metasync-demo-"))
    try:
        make_repository(WORK)
        first = git("rev-parse", "HEAD", quiet=True)
        pin("qa", first)
        pin("prod", first)
        git("commit", "-q", "-am", f"qa and prod run {first[:7]}", quiet=True)
        print(f"demo project: a copy of the example in a new git repository, {WORK}")
        for server in servers:
            taskdefs, workflows, handlers = definitions_on(server)
            print(
                f"{server.name:5} {server.url}  healthy; holds {taskdefs} task defs, "
                f"{workflows} workflows, {handlers} event handlers"
            )

        step("Validate the example project offline, as every environment sees it")
        metasync("validate")

        step("Render dev: the desired state, variables resolved (first lines)")
        metasync("render", "--env", "dev", show=14)

        step("Plan dev: everything is new on an empty server (first lines)")
        metasync("plan", "--env", "dev", "--detailed-exitcode", show=24, expect=2)

        step("Apply dev")
        metasync("apply", "--env", "dev", "--auto-approve")

        step("Test the workflows on dev's server: tasks mocked, everything else executed")
        metasync("test", "--env", "dev")

        step("Plan dev again: nothing to do (no perpetual diffs from server defaults)")
        metasync("plan", "--env", "dev", "--detailed-exitcode", show=0)
        print("exit code 0: dev matches git")

        step("Someone edits dev by hand: retryCount of a task inside a loop inside a fork branch")
        edit_live(servers[0])
        metasync("drift", "--env", "dev", expect=2)
        metasync("plan", "--env", "dev", "--detailed-exitcode", expect=2)
        metasync("apply", "--env", "dev", "--auto-approve", show=0)
        metasync("plan", "--env", "dev", "--detailed-exitcode", show=0)
        print("healed: exit code 0")

        step("qa and prod run a pinned commit: apply it there too")
        for env in ("qa", "prod"):
            metasync("apply", "--env", env, "--auto-approve", show=0)
            metasync("plan", "--env", env, "--detailed-exitcode", show=0)
        print("exit code 0: qa and prod match their pinned commit")

        step("A pull request changes a manifest: only dev's desired state changes")
        git("switch", "-q", "-c", "slower-captures")
        path = WORK / "manifests" / "taskdefs" / "payments.yaml"
        path.write_text(
            path.read_text().replace("  retryDelaySeconds: 2\n", "  retryDelaySeconds: 5\n", 1)
        )
        git("commit", "-q", "-am", "payments: back off longer between captures")
        metasync("changed", "--base", "main")
        print("qa and prod run their pinned commit: the edit reaches them only by promotion")

        step("It merges: the merge job applies dev, and dev's history gains a revision")
        before = git("rev-parse", "main", quiet=True)
        git("switch", "-q", "main")
        git("merge", "-q", "--ff-only", "slower-captures")
        metasync("changed", "--base", before)
        out = metasync("apply", "--env", "dev", "--auto-approve", show=0)
        print(
            "\n".join(line for line in out.splitlines() if "landed" in line or "revision" in line)
        )
        metasync("history", "--env", "dev")

        step("Roll dev back by revision, twice (the second finds nothing to do), then forward")
        revisions = json.loads(metasync("history", "--env", "dev", "-o", "json", show=0))
        newest = revisions["revisions"][-1]["revision"]
        metasync("rollback", "--env", "dev", "--to", str(newest - 1), "--auto-approve", show=6)
        metasync("rollback", "--env", "dev", "--auto-approve")
        metasync("plan", "--env", "dev", "--detailed-exitcode", show=0, expect=2)
        print("exit code 2: dev runs the old definition again; git still has the change")
        metasync("apply", "--env", "dev", "--auto-approve", show=0)

        step("Stages hold: dev cannot be promoted straight to prod")
        metasync("promote", "dev", "prod", expect=1)

        step("Status: dev has it, qa is waiting for the promotion")
        out = metasync("status", "--env", "dev", "--env", "qa", show=0)
        print(
            "\n".join(
                line for line in out.splitlines() if "charge_payment" in line or "resource" in line
            )
        )

        step("Promote dev to qa: a branch that moves qa's pin, ready for a pull request")
        out = metasync("promote", "dev", "qa")
        branch = out.split(" on branch ", 1)[1].split()[0]
        git("worktree", "add", "-q", str(WORK / ".review"), branch)

        step("The pull request job: qa alone changes; its plan is saved for the merge")
        review = ("--project", ".review")
        metasync(*review, "changed", "--base", "main")
        plan_file = str(WORK / "qa.plan.json")
        metasync(*review, "plan", "--env", "qa", "--out", plan_file, "--detailed-exitcode",
                 expect=2)  # fmt: skip

        step("It merges: the merge job applies exactly the reviewed plan")
        git("worktree", "remove", "--force", str(WORK / ".review"))
        git("merge", "-q", "--ff-only", branch)
        metasync("apply", plan_file, show=0)
        metasync("plan", "--env", "qa", "--detailed-exitcode", show=0)
        metasync("history", "--env", "qa")

        step("Done")
        print("qa runs what dev runs, as reviewed; prod waits for its own promotion "
              "(metasync promote qa prod).")  # fmt: skip
    finally:
        if args.keep:
            for server in servers:
                conductor_server.remember(server)
            print("servers left running: python scripts/conductor_server.py stop --all")
        else:
            for server in servers:
                server.stop()
            print("servers stopped")
        if args.keep:
            print(f"demo project kept in {WORK}")
        else:
            shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
