#!/usr/bin/env python3
"""Benchmark: `plan` for N workflows of 20 tasks against a real Conductor 3.15.0, 1% changed.

    .venv/bin/python benchmarks/bench_plan.py            # N = 2,000 and 10,000
    .venv/bin/python benchmarks/bench_plan.py 500

For each N: start a server, register the generated project (bulk writes, not timed), change 1% of
the workflow manifests, then time `Project.plan` against the floor (README: Performance):
fetching and parsing the server's bulk lists plus parsing the manifests with libyaml. Best of three
runs each; peak memory is the maximum resident set of one plan run in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load

import conductor_server
from metasync import operations as op
from metasync.project import Project


def register(root: Path, url: str) -> None:
    """Put the rendered project on the server in bulk (setup, not measured)."""
    desired = Project(root).render("dev")
    with httpx.Client(base_url=f"{url}/api", timeout=300) as api:
        taskdefs = [dict(r.spec) for r in desired.resources if r.kind == "TaskDef"]
        api.post("/metadata/taskdefs", json=taskdefs).raise_for_status()
        workflows = [dict(r.spec) for r in desired.resources if r.kind == "WorkflowDef"]
        for i in range(0, len(workflows), 500):
            api.put("/metadata/workflow", json=workflows[i : i + 500]).raise_for_status()


def change_one_percent(root: Path, n: int) -> int:
    changed = 0
    for i in range(0, n, 100):
        path = root / "manifests" / "workflows" / f"wf_{i:05d}.yaml"
        path.write_text(
            path.read_text().replace("        retries: 3\n", "        retries: 33\n", 1)
        )
        changed += 1
    return changed


def floor(root: Path, url: str) -> None:
    with httpx.Client(base_url=f"{url}/api", timeout=300) as api:
        for path in ("/metadata/taskdefs", "/metadata/workflow", "/event"):
            json.loads(api.get(path).content)
    bench_load.floor(root)


def plan_peak_rss_mb(root: Path) -> float:
    """One plan in a fresh process: its own peak resident memory, without this script's data."""
    code = (
        "import resource, sys, pathlib; from metasync.project import Project; "
        "from metasync.operations.plan import plan; plan(Project(pathlib.Path(sys.argv[1])), 'dev'); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)], check=True, capture_output=True, text=True
    )
    return int(out.stdout.split()[-1]) / 1024


def main(sizes: list[int]) -> None:
    os.environ.setdefault("METASYNC_CONDUCTOR_JAVA_OPTS", "-Xmx4g -XX:+UseParallelGC")
    print(
        f"{'workflows':>9} {'changed':>7} {'floor s':>8} {'plan s':>7} {'ratio':>6} "
        f"{'plan peak RSS MB':>16}",
        flush=True,
    )
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            server = conductor_server.start(f"bench{n}", log_dir=root / "log")
            try:
                bench_load.make_project(root, n)
                env = root / "environments" / "dev" / "environment.yaml"
                env.write_text(env.read_text().replace("http://127.0.0.1:18081", server.url))
                register(root, server.url)
                changed = change_one_percent(root, n)
                project = Project(root)
                plan = op.plan.plan(project, "dev").plan  # warm-up and a correctness check
                assert plan.summary()["update"] == changed, plan.summary()
                assert plan.summary()["create"] == 0, plan.summary()
                t_floor = bench_load.best_of(3, partial(floor, root, server.url))
                t_plan = bench_load.best_of(3, partial(op.plan.plan, project, "dev"))
                rss = plan_peak_rss_mb(root)
                print(
                    f"{n:>9,} {changed:>7} {t_floor:>8.2f} {t_plan:>7.2f} "
                    f"{t_plan / t_floor:>6.2f} {rss:>16.0f}",
                    flush=True,
                )
            finally:
                server.stop()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 10000])
