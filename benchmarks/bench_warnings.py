#!/usr/bin/env python3
"""Benchmark: the cost of warnings. `metasync plan` (the whole process) for N workflows of 20 tasks
against a real Conductor 3.15.0, once with the project's task definitions and once without them
(they live on the server, registered by someone else): then every SIMPLE task warns that its task
definition is not defined in the project (16 per workflow: 32,000 warnings for N = 2,000).

    .venv/bin/python benchmarks/bench_warnings.py            # N = 2,000
    .venv/bin/python benchmarks/bench_warnings.py 500

Both plans are no-ops (the server holds the same objects). Each figure is the best of five runs,
the two projects' runs interleaved: wall time, and the process's CPU time (user + system: steadier
on a busy machine). Printed: both times, their ratios, and how many lines of warnings the plan
with warnings writes by default (on stderr).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load
import bench_plan

import conductor_server

METASYNC = str(Path(sys.executable).parent / "metasync")


def run_plan(root: Path) -> tuple[float, float, str]:
    """One `metasync plan --env dev` in its own process: wall seconds, CPU seconds, its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [METASYNC, "--project", str(root), "plan", "--env", "dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"plan failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stderr


def best(roots: list[Path], runs: int = 5) -> list[tuple[float, float, str]]:
    """Best of ``runs`` for each project, the projects' runs interleaved (a busy machine's load
    then weighs on both alike)."""
    results: list[list[tuple[float, float, str]]] = [[] for _ in roots]
    for _ in range(runs):
        for i, root in enumerate(roots):
            results[i].append(run_plan(root))
    return [(min(r[0] for r in rs), min(r[1] for r in rs), rs[0][2]) for rs in results]


def warning_lines(stderr: str) -> int:
    return sum(1 for line in stderr.splitlines() if line.strip())


def main(sizes: list[int]) -> None:
    os.environ.setdefault("METASYNC_CONDUCTOR_JAVA_OPTS", "-Xmx4g -XX:+UseParallelGC")
    print(
        f"{'workflows':>9} {'warnings':>8} {'clean s':>8} {'warned s':>8} {'ratio':>6} "
        f"{'clean cpu':>9} {'warned cpu':>10} {'ratio':>6} {'stderr lines':>12}",
        flush=True,
    )
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            clean, warned = Path(tmp) / "clean", Path(tmp) / "warned"
            server = conductor_server.start(f"warn{n}", log_dir=Path(tmp) / "log")
            try:
                bench_load.make_project(clean, n)
                env = clean / "environments" / "dev" / "environment.yaml"
                env.write_text(env.read_text().replace("http://127.0.0.1:18081", server.url))
                bench_plan.register(clean, server.url)
                shutil.copytree(clean, warned)
                (warned / "manifests" / "taskdefs.yaml").unlink()  # they live on the server
                (clean_wall, clean_cpu, clean_err), (warned_wall, warned_cpu, warned_err) = best(
                    [clean, warned]
                )
                count = warned_err.count("no TaskDef")  # the summary's places name it
                summary = [line for line in warned_err.splitlines() if "×" in line]
                print(
                    f"{n:>9,} {summary[0].split()[1] if summary else count:>8} "
                    f"{clean_wall:>8.2f} {warned_wall:>8.2f} {warned_wall / clean_wall:>6.2f} "
                    f"{clean_cpu:>9.2f} {warned_cpu:>10.2f} {warned_cpu / clean_cpu:>6.2f} "
                    f"{warning_lines(warned_err):>12}",
                    flush=True,
                )
                assert warning_lines(clean_err) == 0, clean_err
            finally:
                server.stop()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000])
