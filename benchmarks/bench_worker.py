#!/usr/bin/env python3
"""Benchmark: one metasync_reconcile run on Conductor workers against `metasync drift --all`.

    .venv/bin/python benchmarks/bench_worker.py                    # 30 environments, 200 workflows
    .venv/bin/python benchmarks/bench_worker.py --envs 30 --workflows 200 --threads 1,2,4

Three real Conductor 3.15.0 servers (the first is also the control plane); a generated project
(bench_load.py's workflows of 20 tasks) registered on each, and ``--envs`` environments spread
over the three. Timed, wall seconds from start to the last result (best of ``--runs``):

* ``drift --all``: one process, the command CI or cron would run (it reads up to 8 environments
  at a time);
* ``reconcile, 1 worker x T threads``: `metasync control install`, then one worker process with
  ``--threads T`` already polling; from POST /api/workflow/metasync_reconcile to COMPLETED;
* ``reconcile, 2 workers x T``: the same with two worker processes.

Each worker keeps its trees and caches warm between runs (as a long-running worker does): the
first run of each setting is a warm-up and not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_load
import bench_plan

import conductor_server

METASYNC = str(Path(sys.executable).with_name("metasync"))


def project(root: Path, workflows: int, envs: int, urls: Sequence[str]) -> str:
    """The generated project with ``envs`` environments over ``urls``, committed; its commit."""
    bench_load.make_project(root, workflows)
    dev = root / "environments" / "dev" / "environment.yaml"
    text = dev.read_text()
    shutil.rmtree(root / "environments")
    for n in range(envs):
        folder = root / "environments" / f"env{n:02d}"
        folder.mkdir(parents=True)
        (folder / "environment.yaml").write_text(
            text.replace("http://127.0.0.1:18081", urls[n % len(urls)])
        )
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"]):  # fmt: skip
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip


@contextmanager
def workers(control: str, count: int, threads: int, cache: Path) -> Iterator[None]:
    command = [METASYNC, "worker", "--control", control, "--threads", str(threads)]
    processes = [
        subprocess.Popen([*command, "--cache", str(cache / f"w{i}")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(count)
    ]  # fmt: skip
    try:
        time.sleep(2)  # polling
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=120)


def reconcile(control: str, root: Path, commit: str, envs: int) -> float:
    start = time.perf_counter()
    answer = httpx.post(f"{control}/api/workflow", json={
        "name": "metasync_reconcile", "version": 1,
        "input": {"repository": str(root), "commit": commit},
    }, timeout=30)  # fmt: skip
    answer.raise_for_status()
    while True:
        found = httpx.get(f"{control}/api/workflow/{answer.text}", timeout=30).json()
        if found["status"] != "RUNNING":
            break
        time.sleep(0.05)
    took = time.perf_counter() - start
    status = found.get("output", {}).get("status") or {}
    columns = status.get("environments") or []
    if found["status"] != "COMPLETED" or len(columns) != envs:
        raise SystemExit(f"reconcile {found['status']}: {len(columns)} of {envs} results")
    errors = [c["environment"] for c in columns if c["state"] == "failed"]
    if errors:
        raise SystemExit(f"reconcile: {len(errors)} environment(s) not checked: {errors[:3]}")
    return took


def drift_all(root: Path, envs: int) -> float:
    start = time.perf_counter()
    done = subprocess.run([METASYNC, "--project", str(root), "drift", "--all", "-o", "json"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    took = time.perf_counter() - start
    if done.returncode not in (0, 2) or len(json.loads(done.stdout)["environments"]) != envs:
        raise SystemExit(f"drift --all exited {done.returncode}: {done.stderr[-400:]}")
    return took


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=30)
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("METASYNC_CONDUCTOR_JAVA_OPTS", "-Xmx2g -XX:+UseParallelGC")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        servers = []
        for i in range(3):
            server = conductor_server.start(f"benchw{i}", log_dir=Path(tmp) / f"log{i}")
            stack.callback(server.stop)
            servers.append(server)
        urls = [s.url for s in servers]
        root = Path(tmp) / "repo"
        commit = project(root, args.workflows, args.envs, urls)
        # the project on each server (as dev renders it: the same for every environment)
        (root / "environments" / "dev").mkdir()
        shutil.copy(root / "environments" / "env00" / "environment.yaml",
                    root / "environments" / "dev" / "environment.yaml")  # fmt: skip
        for url in urls:
            bench_plan.register(root, url)
        shutil.rmtree(root / "environments" / "dev")
        control = urls[0]
        subprocess.run([METASYNC, "control", "install", "--control", control, "--owner-email",
                        "bench@example.com"], check=True, capture_output=True)  # fmt: skip
        rows = []
        drift_all(root, args.envs)  # warm-up: the project's cache
        rows.append(("drift --all (one process)",
                     min(drift_all(root, args.envs) for _ in range(args.runs))))  # fmt: skip
        for count in (1, 2):
            for threads in [int(t) for t in args.threads.split(",")]:
                with workers(control, count, threads, Path(tmp) / f"cache{count}x{threads}"):
                    reconcile(control, root, commit, args.envs)  # warm-up
                    best = min(reconcile(control, root, commit, args.envs)
                               for _ in range(args.runs))  # fmt: skip
                rows.append((f"reconcile, {count} worker(s) x {threads} thread(s)", best))
        print(f"{args.envs} environments over 3 servers, {args.workflows} workflows each "
              f"(best of {args.runs}, seconds wall)")  # fmt: skip
        for name, seconds in rows:
            print(f"  {name:<40} {seconds:7.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
