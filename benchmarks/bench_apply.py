#!/usr/bin/env python3
"""Benchmark: `metasync apply` of N new workflows against the same bulk requests made by hand.

    .venv/bin/python benchmarks/bench_apply.py                 # N = 2,000 and 10,000, best of 3
    .venv/bin/python benchmarks/bench_apply.py 2000 --runs 2
    .venv/bin/python benchmarks/bench_apply.py 2000 --src /tmp/old/src   # another metasync's code

For each N: generate the benchmark project (N workflows of 20 tasks and their task definitions,
benchmarks/bench_load.py), then on a real Conductor 3.15.0, fresh for every run (the server is
restarted: 3.15 keeps its data in memory):

* floor: the rendered specs, stamped as apply stamps them, sent by hand with httpx: one POST of the
  task definitions, then PUT lists of the workflows in apply's batch size (apply/steps.py);
* apply PLAN: CI's way, `metasync plan --out PLAN` (on the pull request: timed apart, as "plan")
  then `metasync apply PLAN` (on merge: the figure compared with the floor) as whole processes;
* apply: `metasync apply --auto-approve` as a whole process (interpreter start, plan with the
  server's validation of each workflow, lock, history and before-images, the writes, the
  read-back), wall time.

Each is the best of ``--runs``; a ratio is a time / floor (issue 17's target: <= 1.5). ``--src``
runs metasync with another checkout's ``src`` first on PYTHONPATH (before/after figures).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load

import conductor_server
from metasync.apply.steps import BATCH_OBJECTS
from metasync.conductor.live import stamp
from metasync.model.fingerprint import fingerprint
from metasync.project import Project

PORT = 18545


def stamped_specs(root: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The task definitions and workflows as apply sends them (with the ownership stamp)."""
    project = Project(root)
    desired = project.render("dev")
    taskdefs: list[dict[str, object]] = []
    workflows: list[dict[str, object]] = []
    for r in desired.resources:
        spec = dict(r.spec) | {"ownerApp": stamp(project.mark, fingerprint(r.spec))}
        (taskdefs if r.kind == "TaskDef" else workflows).append(spec)
    return taskdefs, workflows


def by_hand(url: str, taskdefs: list[dict[str, object]], workflows: list[dict[str, object]]) -> float:  # fmt: skip
    start = time.perf_counter()
    with httpx.Client(base_url=f"{url}/api", timeout=600) as api:
        api.post("/metadata/taskdefs", json=taskdefs).raise_for_status()
        for i in range(0, len(workflows), BATCH_OBJECTS):
            api.put("/metadata/workflow", json=workflows[i : i + BATCH_OBJECTS]).raise_for_status()
    return time.perf_counter() - start


def metasync(root: Path, src: str | None, *args: str, expect: str) -> float:
    """Wall time of a whole ``metasync`` process; its output must say ``expect``."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-c", "import sys; from metasync.cli import main; main()",
               "--project", str(root), *args]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or expect not in done.stdout:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n"
                 f"{done.stderr[-2000:]}")  # fmt: skip
    return elapsed


def apply(root: Path, src: str | None) -> float:
    return metasync(
        root, src, "apply", "--env", "dev", "--auto-approve", expect="change(s) landed."
    )


def saved(root: Path, src: str | None, plans: list[float]) -> float:
    """``plan --out`` (its time added to ``plans``), then the time of ``apply PLAN``."""
    path = root.parent / "plan.json"
    plans.append(metasync(root, src, "plan", "--env", "dev", "--out", str(path), expect="Plan: "))
    return metasync(root, src, "apply", str(path), expect="change(s) landed.")


def fresh_server(log: Path) -> conductor_server.Server:
    return conductor_server.start("bench-apply", PORT, log_dir=log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[2000, 10000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--src", help="run the apply with this src/ first on PYTHONPATH")
    args = parser.parse_args()
    os.environ.setdefault("METASYNC_CONDUCTOR_JAVA_OPTS", "-Xmx4g -XX:+UseParallelGC")
    print(f"{'workflows':>9} {'floor s':>8} {'plan s':>7} {'apply PLAN s':>12} {'ratio':>6} "
          f"{'apply s':>8} {'ratio':>6}   (best of {args.runs}, batches of {BATCH_OBJECTS})",
          flush=True)  # fmt: skip
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "project"
            root.mkdir()
            bench_load.make_project(root, n)
            env_file = root / "environments" / "dev" / "environment.yaml"
            url = f"http://127.0.0.1:{PORT}"
            env_file.write_text(env_file.read_text().replace("http://127.0.0.1:18081", url))
            taskdefs, workflows = stamped_specs(root)
            floors: list[float] = []
            plans: list[float] = []
            saved_applies: list[float] = []
            applies: list[float] = []
            for _ in range(args.runs):
                measures = (
                    (partial(by_hand, url, taskdefs, workflows), floors),
                    (partial(saved, root, args.src, plans), saved_applies),
                    (partial(apply, root, args.src), applies),
                )
                for measure, times in measures:
                    server = fresh_server(Path(tmp) / "log")
                    try:
                        times.append(measure())
                    finally:
                        server.stop()
            floor, saved_apply, whole = min(floors), min(saved_applies), min(applies)
            print(f"{n:>9,} {floor:>8.2f} {min(plans):>7.2f} {saved_apply:>12.2f} "
                  f"{saved_apply / floor:>6.2f} {whole:>8.2f} {whole / floor:>6.2f}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
