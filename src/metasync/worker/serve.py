"""`metasync worker`: metasync's own task types, polled from a control-plane Conductor.

Built on the official Python SDK (``conductor-python``): one ``TaskRunner`` per task type, each
in a thread of this process with ``threads`` tasks at a time. What each task type does:
``worker/tasks.py``.

Results, as Conductor retries them: a task whose input or project is wrong (not a full commit id,
an environment the project does not have, a manifest that does not load) fails with a terminal
error (a retry would fail the same way); one the worker could not carry out for now (the
repository could not be fetched, a server answered with an error, another run holds the
environment's apply lock) fails and is retried by its task definition; an environment whose
server could not be read is a result (its ``error``, as ``drift`` reports it), not a failure. A
worker that dies mid-task is covered by the task definition's responseTimeoutSeconds and retries.

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
from pathlib import Path
from typing import Any

from conductor.client.automator.task_runner import TaskRunner
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.task_result_status import TaskResultStatus
from conductor.client.worker.worker_interface import WorkerInterface

from metasync.apply.lock import Locked
from metasync.errors import MetasyncError, ServerError, redact_url
from metasync.worker.checkouts import Checkouts, FetchFailed
from metasync.worker.tasks import (
    DRIFT,
    ENVIRONMENTS,
    HANDLERS,
    REPORT,
    SYNC,
    Context,
    Job,
    Unsuccessful,
)

log = logging.getLogger("metasync.worker")

#: the task types of a reconcile, polled at the worker's pace; the others every IDLE_POLL_MS
RECONCILE_TYPES = frozenset({ENVIRONMENTS, DRIFT, SYNC, REPORT})
IDLE_POLL_MS = 1000


def serve(control: str, *, threads: int, domain: str | None, cache: Path, stop: threading.Event,
          poll_ms: int = 100, notify: Sequence[str] = (),
          said: Callable[[str], None] = print) -> None:  # fmt: skip
    """Poll ``control`` (its URL, without /api) for metasync's task types until ``stop`` is set,
    then let the tasks in hand finish. ``notify``: webhooks told of each reconcile's drift and
    failures."""

    context = Context(Checkouts(cache), tuple(notify))
    configuration = Configuration(server_api_url=control.rstrip("/") + "/api")
    runners = []
    for task_type, (one, handler) in HANDLERS.items():
        worker = _Worker(task_type, one, handler, context, said)
        # a reconcile's types are polled every poll_ms; those a person's workflow runs now and
        # then (plan, apply, test, export) every second: each poller is a request to the
        # control plane every interval, whether or not there is a task
        every = poll_ms if task_type in RECONCILE_TYPES else max(poll_ms, IDLE_POLL_MS)
        worker.poll_interval, worker.thread_count, worker.domain = every, threads, domain
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
                 handler: Callable[[Context, Job], dict[str, Any]], context: Context,
                 said: Callable[[str], None]) -> None:  # fmt: skip
        super().__init__(task_type)
        self._one = one
        self._handler = handler
        self._context = context
        self._said = said

    def get_identity(self) -> str:
        return f"metasync-{socket.gethostname()}-{os.getpid()}"

    def execute(self, task: Task) -> TaskResult:
        result = self.get_task_result_from_task(task)
        started = time.monotonic()
        job: Job | None = None
        try:
            job = Job.of(task.input_data or {}, environment=self._one,
                         ref=self.task_definition_name == ENVIRONMENTS)  # fmt: skip
            result.output_data = self._handler(self._context, job)
            result.status = TaskResultStatus.COMPLETED
            what = _summary(result.output_data)
        except Unsuccessful as exc:  # carried out, and a failure: the document says how
            result.status = TaskResultStatus.FAILED_WITH_TERMINAL_ERROR
            result.reason_for_incompletion = exc.problem.message[:500]
            result.output_data = exc.document
            what = f"failed: {exc.problem.message}"
        except MetasyncError as exc:
            problem = exc.problems[0]
            # wrong input or a wrong project fails for good; what could not be fetched or done
            # on a server now may work on a retry
            terminal = not isinstance(exc, (FetchFailed, ServerError, Locked))
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
            result.output_data = {"error": {"message": result.reason_for_incompletion,
                                            "hint": "See the worker's log."}}  # fmt: skip
            what = f"failed: {type(exc).__name__}"
        at = job.commit[:12] or str(job.given.get("ref")) if job else ""
        where = f"{job.environment or 'project'} @ {at}" if job else "?"
        self._said(f"{self.task_definition_name} {where}: {what} "
                   f"({time.monotonic() - started:.1f} s)")  # fmt: skip
        return result


def _summary(document: Mapping[str, Any]) -> str:
    environments = document.get("environments") or []
    if "dynamicTasks" in document:
        return f"{len(environments)} environment(s): {', '.join(environments)}"
    if "summary" in document and isinstance(document["summary"], Mapping):
        return ", ".join(f"{n} {s}" for s, n in document["summary"].items() if n) or "done"
    if "outcomes" in document:
        return f"{document['landed']} of {len(document['outcomes'])} landed" + (
            " (withheld: the plan is stale)" if document.get("withheld") else ""
        )
    if "files" in document:
        return f"{len(document['files'])} file(s)"
    parts = []
    for env in environments:
        if env.get("error"):
            parts.append("not checked")
        else:
            count = len(env.get("drift") or [])
            parts.append(f"{count} drifted" if count else "in sync")
    return ", ".join(parts) or "done"
