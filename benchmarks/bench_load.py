#!/usr/bin/env python3
"""Benchmark: loading and checking N generated workflows of 20 tasks, against the libyaml floor.

    .venv/bin/python benchmarks/bench_load.py            # N = 2,000 and 10,000
    .venv/bin/python benchmarks/bench_load.py 500

The floor (README: Performance) is parsing the same files with libyaml alone (`CSafeLoader`,
compose + construct, as metasync does to keep line numbers). `render` is metasync's whole offline
path for one environment: read, parse, substitute variables, validate the models, run the checks.
Each figure is the best of three runs; peak memory is the process's maximum resident set.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml

ENVIRONMENT = "server:\n  url: http://127.0.0.1:18081\nvars:\n  owner_email: team@example.com\n  api: https://api.example.com\n"


def workflow(i: int) -> str:
    tasks = []
    for t in range(20):
        ref = f"t{t}"
        if t % 5 == 4:
            tasks.append(
                f"""    - name: route_{t}
      taskReferenceName: {ref}
      type: SWITCH
      evaluatorType: value-param
      expression: status
      inputParameters:
        status: ${{t{t - 1}.output.status}}
      decisionCases:
        ok:
          - name: call_{t}
            taskReferenceName: {ref}_call
            type: HTTP
            inputParameters:
              http_request:
                uri: ((vars.api))/v1/orders/${{workflow.input.orderId}}
                method: POST
                body: {{step: {t}, order: "${{workflow.input.orderId}}"}}
"""
            )
        else:
            tasks.append(
                f"""    - name: worker_{t % 4}
      taskReferenceName: {ref}
      inputParameters:
        orderId: ${{workflow.input.orderId}}
        previous: {"${workflow.input.x}" if t == 0 else f"${{t{t - 1}.output.result}}"}
        retries: {t}
"""
            )
    return f"""apiVersion: metasync/v1
kind: WorkflowDef
metadata:
  name: generated_{i:05d}
  labels: {{team: bench}}
spec:
  version: 1
  description: generated workflow {i}
  ownerEmail: ((vars.owner_email))
  inputParameters: [orderId, x]
  tasks:
{"".join(tasks)}"""


TASKDEFS = "".join(
    f"---\napiVersion: metasync/v1\nkind: TaskDef\nmetadata: {{name: worker_{w}}}\n"
    f"spec: {{ownerEmail: ((vars.owner_email)), retryCount: 2}}\n"
    for w in range(4)
)


def make_project(root: Path, n: int) -> int:
    (root / "manifests" / "workflows").mkdir(parents=True)
    (root / "environments" / "dev").mkdir(parents=True)
    (root / "metasync.yaml").write_text("name: bench\n")  # what apply and plan mark and lock
    (root / "environments" / "dev" / "environment.yaml").write_text(ENVIRONMENT)
    (root / "manifests" / "taskdefs.yaml").write_text(TASKDEFS)
    size = 0
    for i in range(n):
        text = workflow(i)
        size += len(text)
        (root / "manifests" / "workflows" / f"wf_{i:05d}.yaml").write_text(text)
    return size


def best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def floor(root: Path) -> None:
    for path in sorted((root / "manifests").rglob("*.yaml")):
        loader = yaml.CSafeLoader(path.read_text())
        try:
            while loader.check_node():
                loader.construct_document(loader.get_node())
        finally:
            loader.dispose()


def main(sizes: list[int]) -> None:
    from metasync.project import Project  # noqa: PLC0415 (floors import this module alone)

    print(
        f"{'workflows':>9} {'MB':>6} {'floor s':>8} {'render s':>9} {'ratio':>6} {'peak RSS MB':>12}"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            size = make_project(root, n)
            project = Project(root)
            desired = project.render("dev")  # warm-up, and a correctness check
            assert len(desired.resources) == n + 4, len(desired.resources)
            assert not desired.problems, desired.problems[:3]
            t_floor = best_of(3, partial(floor, root))
            t_render = best_of(3, partial(project.render, "dev"))
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"{n:>9,} {size / 1e6:>6.1f} {t_floor:>8.2f} {t_render:>9.2f} "
                f"{t_render / t_floor:>6.2f} {rss:>12.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 10000])
