#!/usr/bin/env python3
"""Chaos run (not a test): applies through a fault-injecting proxy, checked against the server.

    .venv/bin/python benchmarks/chaos_apply.py                 # 500 workflows, 10 runs, 30% faults
    .venv/bin/python benchmarks/chaos_apply.py 100 5 0.3 [oss]

Starts a real server (3.15 by default, or oss), generates the benchmark project (N workflows of 20
tasks and their task definitions; from the second run on, a different tenth of the workflows is
changed before each run), and applies it RUNS times through tests/faultproxy.py, which
answers 503, closes connections before forwarding, or forwards and drops the answer, each for a
share of the requests (FAULTS split evenly). After each run a plan made straight against the
server is the judge:

* lost: reported landed, but the server does not hold it (the plan still wants it);
* misreported: reported not landed, but the server holds exactly that (a noop now), and it was
  not already there before the run;
* duplicated: more versions of a workflow, or more handlers of one name, than git has.

After the RUNS runs, applies through the same faults go on with nothing new (3 at most) until the
plan is a no-op; it ends with the last plan's count of pending changes (0: the apply converged).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import httpx
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load

import conductor_server
from faultproxy import Fault, FaultProxy
from metasync import operations as op
from metasync.cli import cli
from metasync.project import Project

ROW = re.compile(r"^│ (\S+ \S+(?: v\d+)?) +│ \w+ +│ (landed|not landed|unknown) +│$", re.M)


def actions(root: Path) -> dict[str, str]:
    """Each object of the project: what a plan straight against the server wants (noop: done)."""
    plan = op.plan.plan(Project(root), "dev").plan
    return {c.title: c.action for c in plan.changes}


def point(root: Path, url: str) -> None:
    env = root / "environments" / "dev" / "environment.yaml"
    env.write_text(re.sub(r"url: \S+", f"url: {url}", env.read_text(), count=1))


def change_a_tenth(root: Path, n: int, run: int) -> None:
    """Every tenth workflow (a different tenth each run) gets a new description: updates to land."""
    for i in range(run % 10, n, 10):
        path = root / "manifests" / "workflows" / f"wf_{i:05d}.yaml"
        text = re.sub(r"description: generated workflow \d+.*\n",
                      f"description: generated workflow {i}, run {run}\n", path.read_text())  # fmt: skip
        path.write_text(text)


def duplicated(url: str, names: set[str]) -> int:
    workflows = httpx.get(f"{url}/api/metadata/workflow", timeout=60).json()
    versions = Counter(w["name"] for w in workflows if w["name"] in names)
    return sum(count - 1 for count in versions.values() if count > 1)


def main(n: int, runs: int, rate: float, flavour: str) -> None:
    os.environ.setdefault("METASYNC_CONDUCTOR_JAVA_OPTS", "-Xmx3g -XX:+UseParallelGC")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = conductor_server.start("chaos", log_dir=root / "log", flavour=flavour)
        try:
            bench_load.make_project(root, n)
            point(root, server.url)
            names = {r.name for r in Project(root).render("dev").resources}
            faults: tuple[Fault, ...] = ("503", "close", "lose")
            share = {fault: rate / 3 for fault in faults}
            totals: Counter[str] = Counter()
            print(f"{'run':>3} {'faults':>7} {'landed':>6} {'not':>5} {'unknown':>7} {'lost':>4} "
                  f"{'misrep':>6} {'dup':>3} {'pending':>7}", flush=True)  # fmt: skip
            settle = pending = 0
            for run in range(1, runs + 4):
                if run > runs:  # no new change: faults go on until nothing is pending (3 at most)
                    if pending == 0:
                        break
                    settle += 1
                elif run > 1:
                    change_a_tenth(root, n, run)
                point(root, server.url)
                before = actions(root)
                with FaultProxy(server.url, seed=run, shares=share, delay=(0.0, 0.0)) as proxy:
                    point(root, proxy.url)
                    result = CliRunner().invoke(
                        cli, ["--project", str(root), "apply", "--env", "dev", "--auto-approve"]
                    )
                    injected = sum(proxy.counts.values()) - proxy.counts["pass"]
                point(root, server.url)
                table = dict(ROW.findall(result.stdout))
                after = actions(root)
                lost = sum(1 for t, s in table.items() if s == "landed" and after.get(t) != "noop")
                misreported = sum(
                    1 for t, s in table.items()
                    if s == "not landed" and after.get(t) == "noop" and before.get(t) != "noop"
                )  # fmt: skip
                dup = duplicated(server.url, names)
                pending = sum(1 for a in after.values() if a != "noop")
                counts = Counter(table.values())
                totals.update(lost=lost, misreported=misreported, duplicated=dup)
                print(f"{run:>3} {injected:>7} {counts['landed']:>6} {counts['not landed']:>5} "
                      f"{counts['unknown']:>7} {lost:>4} {misreported:>6} {dup:>3} {pending:>7}",
                      flush=True)  # fmt: skip
            print(f"total: {totals['lost']} lost, {totals['duplicated']} duplicated, "
                  f"{totals['misreported']} misreported; last plan: {pending} pending "
                  f"(after {settle} run(s) through the same faults with nothing new)")  # fmt: skip
        finally:
            server.stop()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        int(args[0]) if args else 500,
        int(args[1]) if len(args) > 1 else 10,
        float(args[2]) if len(args) > 2 else 0.3,
        args[3] if len(args) > 3 else "3.15",
    )
