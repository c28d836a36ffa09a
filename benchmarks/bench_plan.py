#!/usr/bin/env python3
"""Benchmark: a whole `metasync plan --env dev` process against a real Conductor 3.15.0.

    .venv/bin/python benchmarks/bench_plan.py                  # N = 2,000 and 10,000
    .venv/bin/python benchmarks/bench_plan.py 2000 --versions 1,10 --runs 3
    .venv/bin/python benchmarks/bench_plan.py 2000 --versions 1,10 --policy new-version

For each N (workflows of 20 tasks, bench_load.py's generator): start a server, register the
generated project in bulk (setup, not timed), then time `metasync plan --env dev` as a fresh process
(wall time from spawn to exit, best of --runs), interleaved run by run with its floors:

* interp: `python -c pass`, interpreter start alone;
* net all / net latest: a fresh `python -c` process that fetches and JSON-parses the server's lists
  with httpx, as metasync reads them: /api/metadata/taskdefs, /api/event and either every version
  of every workflow (/api/metadata/workflow) or the newest ones (/metadata/workflow/latest-versions);
* floor: what the case cannot avoid. Warm: net latest. Cold: the same process also parsing every
  manifest with libyaml (bench_load.floor: CSafeLoader, compose + construct).

Cases, for each number of versions on the server (--versions; the manifests say version 10, the
server holds version 10 alone or versions 1..10, all with the same content):

* cold: the project's parse cache (`.metasync/cache/`) removed first (a no-op where there is none);
* warm: run again, nothing changed;
and with the newest version only, 1% of the workflows edited (as the plans of a pull request):
* 1% warm: the edit made after a run, so only the edited files miss the cache;
* 1% cold: the same plan with the cache removed first.

Each plan's text output is checked (nothing to change, or exactly the edited workflows to update).
Peak MiB is the plan process's maximum resident set (wait4's rusage of that child alone); plan cpu
its user + system CPU seconds in the best run (steadier than wall time on a shared machine; the
ratio is of wall times).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load

import conductor_server
from metasync.project import Project

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
METASYNC = str(Path(PYTHON).with_name("metasync"))
VERSION = 10  # the manifests' version; older ones are 1..VERSION-1
CACHE = Path(".metasync") / "cache"

#: a fresh process that reads the server as a plan must: interpreter start + fetch + JSON-parse
NET = """
import json, sys, httpx
with httpx.Client(base_url=sys.argv[1] + "/api", timeout=600) as api:
    for path in sys.argv[2].split(","):
        response = api.get(path)
        response.raise_for_status()
        json.loads(response.content)
if len(sys.argv) > 3:
    sys.path.insert(0, sys.argv[4])
    import bench_load
    bench_load.floor(__import__("pathlib").Path(sys.argv[3]))
"""
ALL = "/metadata/taskdefs,/metadata/workflow,/event"
LATEST = "/metadata/taskdefs,/metadata/workflow/latest-versions,/event"


@dataclass
class Best:
    """The best wall time of a command over the runs, and the peak memory of that command."""

    seconds: float = float("inf")
    cpu: float = float("inf")  # the child's user + system CPU seconds in its best run
    peak_mib: float = 0.0
    outputs: list[str] = field(default_factory=list)

    def add(self, seconds: float, cpu: float, peak_mib: float, output: str) -> None:
        if seconds < self.seconds:
            self.seconds, self.cpu = seconds, cpu
        self.peak_mib = max(self.peak_mib, peak_mib)
        self.outputs.append(output)


def timed(cmd: Sequence[str], cwd: Path, best: Best, *, ok: Sequence[int] = (0,)) -> str:
    """Run ``cmd`` once as a child; record its wall time and its own peak resident memory."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-3000:]}")
    best.add(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output)
    return output


def register(root: Path, url: str, versions: Sequence[int] = ()) -> None:
    """Put the rendered project on the server in bulk (setup, not measured); ``versions``: also
    register each workflow at these versions, with the same content."""
    desired = Project(root).render("dev")
    with httpx.Client(base_url=f"{url}/api", timeout=600) as api:
        workflows = [dict(r.spec) for r in desired.resources if r.kind == "WorkflowDef"]
        if not versions:
            taskdefs = [dict(r.spec) for r in desired.resources if r.kind == "TaskDef"]
            api.post("/metadata/taskdefs", json=taskdefs).raise_for_status()
        each: list[int | None] = [*versions] or [None]
        for version in each:
            batch = [w if version is None else {**w, "version": version} for w in workflows]
            for i in range(0, len(batch), 500):
                api.put("/metadata/workflow", json=batch[i : i + 500]).raise_for_status()


def change_one_percent(root: Path, n: int, originals: dict[Path, str], value: int) -> int:
    """Edit one workflow in a hundred (its retries: 3 becomes ``value``); returns how many."""
    changed = 0
    for i in range(0, n, 100):
        path = root / "manifests" / "workflows" / f"wf_{i:05d}.yaml"
        original = originals.setdefault(path, path.read_text())
        path.write_text(original.replace("        retries: 3\n", f"        retries: {value}\n", 1))
        changed += 1
    return changed


def restore(originals: dict[Path, str]) -> None:
    for path, text in originals.items():
        path.write_text(text)


PLAN_LINE = re.compile(r"Plan: (\d+) to create, (\d+) to update, (\d+) to delete")


def check_plan(output: str, changed: int, case: str, policy: str = "in-place") -> None:
    """The plan changes nothing, or exactly the edited workflows: updated in place, or (policy
    new-version) each registered as a new version."""
    found = PLAN_LINE.search(output)
    expected = (changed, 0, 0) if policy == "new-version" else (0, changed, 0)
    if found is None or tuple(map(int, found.groups())) != expected:
        raise SystemExit(f"{case}: not the plan expected ({expected}):\n{output[-3000:]}")


def floors(root: Path, url: str, latest: bool, cold: bool, into: dict[str, Best]) -> None:
    timed([PYTHON, "-c", "pass"], root, into["interp"])
    timed([PYTHON, "-c", NET, url, ALL], root, into["net all"])
    if latest:
        timed([PYTHON, "-c", NET, url, LATEST], root, into["net latest"])
    if cold:
        lists = LATEST if latest else ALL
        timed([PYTHON, "-c", NET, url, lists, str(root), str(HERE)], root, into["cold floor"])


def plan(root: Path, best: Best, *, cold: bool) -> str:
    if cold:
        shutil.rmtree(root / CACHE, ignore_errors=True)
    return timed([METASYNC, "plan", "--env", "dev"], root, best)


def row(n: int, versions: int, case: str, fl: dict[str, Best], *, floor: Best, p: Best) -> str:
    latest = fl["net latest"].seconds
    return (
        f"{n:>9,} {versions:>8} {case:>8} {fl['interp'].seconds:>7.2f} "
        f"{fl['net all'].seconds:>8.2f} {latest if latest < float('inf') else float('nan'):>10.2f} "
        f"{floor.seconds:>7.2f} {p.seconds:>7.2f} {p.cpu:>8.2f} {p.seconds / floor.seconds:>6.2f} "
        f"{p.peak_mib:>9.0f}"
    )


def bench(n: int, version_counts: Sequence[int], runs: int, port: int | None,
          policy: str = "in-place") -> None:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        server = conductor_server.start(f"bench{n}", port, log_dir=Path(tmp) / "log")
        try:
            bench_load.make_project(root, n)
            for path in (root / "manifests" / "workflows").glob("*.yaml"):
                text = path.read_text()
                path.write_text(text.replace("spec:\n  version: 1\n", f"spec:\n  version: {VERSION}\n", 1))  # fmt: skip
            env = root / "environments" / "dev" / "environment.yaml"
            env.write_text(env.read_text().replace("http://127.0.0.1:18081", server.url)
                           + f"policy:\n  versioning: {policy}\n")  # fmt: skip
            register(root, server.url)
            latest = httpx.get(f"{server.url}/api/metadata/workflow/latest-versions", timeout=600)
            has_latest = latest.status_code == 200
            on_server = 1
            for versions in sorted(version_counts):
                if versions > on_server:
                    register(root, server.url, range(VERSION - versions + 1, VERSION - on_server + 1))  # fmt: skip
                    on_server = versions
                fl: dict[str, Best] = {k: Best() for k in ("interp", "net all", "net latest", "cold floor")}  # fmt: skip
                cold, warm = Best(), Best()
                for _ in range(runs):
                    floors(root, server.url, has_latest, True, fl)
                    check_plan(plan(root, cold, cold=True), 0, "cold")
                    check_plan(plan(root, warm, cold=False), 0, "warm")
                net = fl["net latest"] if has_latest else fl["net all"]
                print(row(n, versions, "cold", fl, floor=fl["cold floor"], p=cold), flush=True)
                print(row(n, versions, "warm", fl, floor=net, p=warm), flush=True)
                if versions != min(version_counts):
                    continue
                originals: dict[Path, str] = {}
                changed_warm, changed_cold = Best(), Best()
                fl = {k: Best() for k in ("interp", "net all", "net latest", "cold floor")}
                for run in range(runs):
                    changed = change_one_percent(root, n, originals, 33 + run)
                    floors(root, server.url, has_latest, True, fl)
                    check_plan(plan(root, changed_warm, cold=False), changed, "1% warm", policy)
                    check_plan(plan(root, changed_cold, cold=True), changed, "1% cold", policy)
                restore(originals)
                net = fl["net latest"] if has_latest else fl["net all"]
                print(row(n, versions, "1% warm", fl, floor=net, p=changed_warm), flush=True)
                print(
                    row(n, versions, "1% cold", fl, floor=fl["cold floor"], p=changed_cold),
                    flush=True,
                )
        finally:
            server.stop()


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[2000, 10000])
    parser.add_argument("--versions", default="1,10", help="versions per workflow on the server")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    parser.add_argument("--port", type=int, help="the server's port (default: a free one)")
    parser.add_argument("--policy", choices=["in-place", "new-version"], default="in-place",
                        help="the environment's policy.versioning: in place, a plan reads the "
                        "newest versions and those git holds; new-version, the newest and "
                        "the history of the workflows git does not hold")  # fmt: skip
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    version_counts = sorted({int(v) for v in args.versions.split(",")})
    if not 1 <= version_counts[0] <= version_counts[-1] <= VERSION:
        parser.error(f"--versions: numbers from 1 to {VERSION}")
    # the server holds every version of every workflow in memory, and answers lists of them whole
    heap = 4 if max(args.sizes) * version_counts[-1] <= 20_000 else 8
    os.environ.setdefault("METASYNC_CONDUCTOR_JAVA_OPTS", f"-Xmx{heap}g -XX:+UseParallelGC")
    print(
        f"{'workflows':>9} {'versions':>8} {'case':>8} {'interp':>7} {'net all':>8} "
        f"{'net latest':>10} {'floor':>7} {'plan':>7} {'plan cpu':>8} {'ratio':>6} {'peak MiB':>9}  (seconds)",
        flush=True,
    )
    for n in args.sizes:
        bench(n, version_counts, args.runs, args.port, args.policy)


if __name__ == "__main__":
    main(sys.argv[1:])
