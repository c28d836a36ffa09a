"""`metasync worker`: metasync's own task types, polled from a control-plane Conductor.

Built on the official Python SDK (``conductor-python``): one ``TaskRunner`` per task type, each
in a thread of this process with ``threads`` tasks at a time. A task names a repository, a commit
(its full id) and an environment; it runs in the worker's tree of that commit
(``worker/checkouts.py``), never in a shared working tree, and returns the same formatVersion 1
document as the command's ``-o json``, secrets masked as everywhere else.

Results, as Conductor retries them: a task whose input is wrong (not a full commit id, an
environment the project does not have) fails with a terminal error (a retry would fail the same
way); one the worker could not carry out (the repository could not be fetched) fails and is
retried by its task definition; an environment whose server could not be read is a result (its
``error``, as ``drift`` reports it), not a failure. A worker that dies mid-task is covered by
the task definition's responseTimeoutSeconds and retries.

``stop`` (set on SIGTERM or SIGINT by the command): no new task is polled, the tasks in hand
finish and are reported, then ``serve`` returns.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conductor.client.automator.task_runner import TaskRunner
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.task_result_status import TaskResultStatus
from conductor.client.worker.worker_interface import WorkerInterface

from metasync import operations as op
from metasync.errors import ConfigError, Location, MetasyncError, redact_url
from metasync.project import Project
from metasync.render.drift import drift_document
from metasync.worker.checkouts import Checkouts

log = logging.getLogger("metasync.worker")

#: the task types a worker polls
DRIFT = "metasync_drift"
ENVIRONMENTS = "metasync_environments"


@dataclass(frozen=True)
class Job:
    """What a task asks: the project at ``commit`` of ``repository`` (in its folder ``path``),
    for ``environment`` (the task types that take one) or ``only`` these environments (none:
    all of them)."""

    repository: str
    commit: str
    environment: str = ""
    path: str = "."
    only: tuple[str, ...] = ()

    @classmethod
    def of(cls, given: Mapping[str, Any], *, environment: bool) -> Job:
        needed = (
            ("repository", "commit", "environment") if environment else ("repository", "commit")
        )
        missing = [k for k in needed if not given.get(k)]
        if missing:
            raise ConfigError(
                f"the task's input has no {', '.join(missing)}",
                location=Location("task input", None, missing[0]),
                hint=f"Give {', '.join(needed)}: a URL git can fetch, a full commit id"
                + (", an environment's name." if environment else "."),
            )
        path = str(given.get("path") or ".")
        if path.startswith("/") or ".." in Path(path).parts:
            raise ConfigError(
                f"path {path!r} leaves the repository",
                location=Location("task input", None, "path"),
                hint="Give the project's folder relative to the repository's root.",
            )
        only = given.get("environments") or ()
        if isinstance(only, str):
            only = [e.strip() for e in only.split(",") if e.strip()]
        if not isinstance(only, (list, tuple)) or not all(isinstance(e, str) for e in only):
            raise ConfigError(
                "environments must be a list of names (or one string, comma-separated)",
                location=Location("task input", None, "environments"),
                hint="Leave it out for every environment of the project.",
            )
        return cls(str(given["repository"]), str(given["commit"]),
                   str(given.get("environment") or ""), path, tuple(only))  # fmt: skip


def _environments_of(project: Project, job: Job, asked: Sequence[str]) -> list[str]:
    """``asked``, each an environment of ``project`` (else a terminal error)."""
    unknown = [name for name in asked if name not in project.environments]
    if unknown:
        raise ConfigError(
            f"the project at {job.commit[:12]} has no environment "
            f"{', '.join(map(repr, unknown))}",
            location=Location("task input", None, "environment" if job.environment else
                              "environments"),
            hint=f"It has: {', '.join(project.environments) or 'none'}.",
        )  # fmt: skip
    return list(asked)


def drift_task(checkouts: Checkouts, job: Job) -> dict[str, Any]:
    """The drift of ``job``'s environment: ``metasync drift -o json``'s document."""
    with checkouts.at(job.repository, job.commit) as tree:
        project = Project(tree / job.path)
        _environments_of(project, job, [job.environment])
        reports = op.drift.drift(project, [job.environment])
    document = drift_document(reports)
    return {**document, "commit": job.commit, "environment": job.environment}


def environments_task(checkouts: Checkouts, job: Job) -> dict[str, Any]:
    """The project's environments at the commit (or those asked), with a metasync_drift task of
    each, as FORK_JOIN_DYNAMIC takes them (``dynamicForkTasksParam`` and
    ``dynamicForkTasksInputParamName``: the form both 3.15 and conductor-oss read)."""
    with checkouts.at(job.repository, job.commit) as tree:
        project = Project(tree / job.path)
        names = _environments_of(project, job, job.only or project.environments)
    return {
        "environments": names,
        "dynamicTasks": [
            {"name": DRIFT, "taskReferenceName": f"drift_{name}", "type": "SIMPLE"}
            for name in names
        ],
        "dynamicTasksInput": {
            f"drift_{name}": {
                "repository": job.repository,
                "commit": job.commit,
                "path": job.path,
                "environment": name,
            }
            for name in names
        },
    }


#: task type -> (whether it takes one environment, what it does)
HANDLERS: dict[str, tuple[bool, Callable[[Checkouts, Job], dict[str, Any]]]] = {
    ENVIRONMENTS: (False, environments_task),
    DRIFT: (True, drift_task),
}


def serve(control: str, *, threads: int, domain: str | None, cache: Path, stop: threading.Event,
          poll_ms: int = 100, said: Callable[[str], None] = print) -> None:  # fmt: skip
    """Poll ``control`` (its URL, without /api) for metasync's task types until ``stop`` is set,
    then let the tasks in hand finish."""

    checkouts = Checkouts(cache)
    configuration = Configuration(server_api_url=control.rstrip("/") + "/api")
    runners = []
    for task_type, (one, handler) in HANDLERS.items():
        worker = _Worker(task_type, one, handler, checkouts, said)
        worker.poll_interval, worker.thread_count, worker.domain = poll_ms, threads, domain
        runner = TaskRunner(worker, configuration)
        # Conductor 3.15 answers POST /api/tasks/update-v2 with 500 (not the 404 or 405 the SDK
        # takes for "use POST /api/tasks"): every result would be retried for a minute, then
        # lost. POST /api/tasks is on every server
        runner._use_update_v2 = False
        runners.append(runner)
    running = [threading.Thread(target=r.run, name=f"metasync-{t}", daemon=True)
               for r, t in zip(runners, HANDLERS, strict=True)]  # fmt: skip
    for thread in running:
        thread.start()
    said(f"metasync worker: polling {', '.join(HANDLERS)} on {redact_url(control)} "
         f"({threads} at a time{f', domain {domain}' if domain else ''})")  # fmt: skip
    stop.wait()
    said("metasync worker: stopping; the tasks in hand finish first")
    for runner in runners:
        runner.stop()
    for thread in running:
        thread.join()
    said("metasync worker: stopped")


class _Worker(WorkerInterface):  # type: ignore[misc]  # the SDK has no type information
    """One task type: each task's job done, the result reported as Conductor retries it."""

    def __init__(self, task_type: str, one: bool,
                 handler: Callable[[Checkouts, Job], dict[str, Any]], checkouts: Checkouts,
                 said: Callable[[str], None]) -> None:  # fmt: skip
        super().__init__(task_type)
        self._one = one
        self._handler = handler
        self._checkouts = checkouts
        self._said = said

    def get_identity(self) -> str:
        return f"metasync-{socket.gethostname()}-{os.getpid()}"

    def execute(self, task: Task) -> TaskResult:
        result = self.get_task_result_from_task(task)
        started = time.monotonic()
        job: Job | None = None
        try:
            job = Job.of(task.input_data or {}, environment=self._one)
            result.output_data = self._handler(self._checkouts, job)
            result.status = TaskResultStatus.COMPLETED
            what = _summary(result.output_data)
        except MetasyncError as exc:
            problem = exc.problems[0]
            # wrong input fails for good; what could not be fetched may work on a retry
            terminal = problem.location is not None and problem.location.file == "task input"
            terminal = terminal and "cannot fetch" not in problem.message
            result.status = (TaskResultStatus.FAILED_WITH_TERMINAL_ERROR if terminal
                             else TaskResultStatus.FAILED)  # fmt: skip
            result.reason_for_incompletion = str(problem)[:500]
            result.output_data = {"error": {"message": problem.message, "hint": problem.hint}}
            what = f"failed: {problem.message}"
        except Exception as exc:  # a bug: the task fails (and is retried), the worker goes on
            log.exception("metasync worker: %s failed", self.task_definition_name)
            result.status = TaskResultStatus.FAILED
            result.reason_for_incompletion = (
                f"{type(exc).__name__} in metasync {self.task_definition_name}"
            )
            what = f"failed: {type(exc).__name__}"
        where = f"{job.environment or 'project'} @ {job.commit[:12]}" if job else "?"
        self._said(f"{self.task_definition_name} {where}: {what} "
                   f"({time.monotonic() - started:.1f} s)")  # fmt: skip
        return result


def _summary(document: Mapping[str, Any]) -> str:
    environments = document.get("environments") or []
    if "dynamicTasks" in document:
        return f"{len(environments)} environment(s): {', '.join(environments)}"
    parts = []
    for env in environments:
        if env.get("error"):
            parts.append("not checked")
        else:
            count = len(env.get("drift") or [])
            parts.append(f"{count} drifted" if count else "in sync")
    return ", ".join(parts) or "done"
