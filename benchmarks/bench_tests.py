#!/usr/bin/env python3
"""Benchmark: `metasync test` of 50 tests of the example against a real Conductor, by --jobs.

    .venv/bin/python benchmarks/bench_tests.py                      # Conductor 3.15.0, started here
    .venv/bin/python benchmarks/bench_tests.py --flavour oss        # conductor-oss 3.32.3
    .venv/bin/python benchmarks/bench_tests.py --server http://127.0.0.1:18291 --jobs 1 8

Issue 15's acceptance: 50 tests of the example run in under a minute on this machine. The example
project is copied into a temporary directory and its WorkflowTest documents are repeated until
there are --tests of them (metadata.name suffixed _001, _002, ...). Each --jobs value is one run
of the installed CLI as a whole process, `metasync test --env dev --server URL -o json`, timed by
its wall clock: start-up, rendering, every request and the clean-up of every execution included.
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
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import conductor_server

ROOT = Path(__file__).resolve().parent.parent
TEST_KIND = "WorkflowTest"


def make_project(root: Path, count: int) -> int:
    """The example project in ``root`` with ``count`` WorkflowTest documents (the example's,
    repeated and renamed); the number of distinct tests they repeat."""
    for part in ("manifests", "environments"):
        shutil.copytree(ROOT / part, root / part)
    shutil.copy(ROOT / "metasync.yaml", root / "metasync.yaml")
    tests_dir = root / "manifests" / "tests"
    originals = []
    for path in sorted(tests_dir.glob("*.yaml")):
        originals += [
            d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == TEST_KIND
        ]
        path.unlink()
    if not originals:
        raise SystemExit("bench_tests: the example has no WorkflowTest documents (manifests/tests)")
    copies = []
    for i in range(count):
        doc = json.loads(json.dumps(originals[i % len(originals)]))  # a deep copy
        doc["metadata"]["name"] = f"{doc['metadata']['name']}_{i + 1:03d}"
        copies.append(doc)
    (tests_dir / "bench.yaml").write_text(yaml.safe_dump_all(copies, sort_keys=False))
    return len(originals)


def run(root: Path, url: str, jobs: int, *select: str) -> tuple[dict[str, Any], float]:
    """One `metasync test` process: its JSON report and its wall time in seconds."""
    exe = shutil.which("metasync") or str(Path(sys.executable).parent / "metasync")
    cmd = [exe, "--project", str(root), "test", "--env", "dev", "--server", url, "-o", "json",
           "--jobs", str(jobs), *(f"--select=name={glob}" for glob in select)]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"bench_tests: `{' '.join(cmd)}` exited {done.returncode}\n{done.stderr}")
    return json.loads(done.stdout), wall


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--server", metavar="URL", help="a running server (default: start one)")
    parser.add_argument(
        "--flavour", choices=list(conductor_server.FLAVOURS), default=conductor_server.DEFAULT_FLAVOUR,
        help="the server started when there is no --server (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--tests", type=int, default=50, help="tests per run (default: 50)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 8],
                        help="--jobs values, one run each (default: 1 4 8)")  # fmt: skip
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="metasync-bench-tests-") as tmp:
        root = Path(tmp) / "project"
        distinct = make_project(root, args.tests)
        server = None
        if args.server:
            url = args.server.rstrip("/")
        else:
            os.environ.setdefault("METASYNC_CONDUCTOR_JAVA_OPTS", "-Xmx2g -XX:+UseParallelGC")
            server = conductor_server.start("bench-tests", log_dir=Path(tmp) / "log",
                                            flavour=args.flavour)  # fmt: skip
            url = server.url
        try:
            print(f"{args.tests} tests ({distinct} distinct, repeated) on {url}", flush=True)
            # warm-up, not timed: the first of each distinct test once (a fresh JVM is slow)
            run(root, url, 1, *(f"*_{i + 1:03d}" for i in range(min(distinct, args.tests))))
            print(f"{'jobs':>4} {'tests':>5} {'passed':>6} {'failed':>6} {'wall s':>7} "
                  f"{'per test s':>10}", flush=True)  # fmt: skip
            failures = 0
            for jobs in args.jobs:
                report, wall = run(root, url, jobs)
                summary = report["summary"]
                tests = len(report["tests"])
                failed = summary["failed"] + summary["error"]
                failures += failed
                print(f"{jobs:>4} {tests:>5} {summary['passed']:>6} {failed:>6} {wall:>7.1f} "
                      f"{wall / max(1, tests):>10.2f}", flush=True)  # fmt: skip
                for test in report["tests"]:
                    if test["outcome"] != "passed":
                        print(
                            f"     {test['outcome']} {test['name']}: {'; '.join(test['failures'])}"
                        )
        finally:
            if server is not None:
                server.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
