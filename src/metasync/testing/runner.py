"""Running WorkflowTest documents on a server and judging what ran.

Each test starts one execution through ``POST /api/workflow/test`` (its request: request.py), is
polled to a terminal state (or until its timeout, or until it waits for a worker it has no mock
for), judged against its expectations (expect.py), and removed from the server with every
sub-workflow execution it started, whatever happened: failed, timed out or interrupted.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

from metasync.conductor.client import ConductorClient
from metasync.errors import MetasyncError, ServerError
from metasync.model.resource import Resource
from metasync.model.workflow_test import WorkflowTestSpec, target
from metasync.testing.expect import TaskRun, base_ref, judge, task_runs
from metasync.testing.request import build, stood_in

TERMINAL = frozenset({"COMPLETED", "FAILED", "TERMINATED", "TIMED_OUT"})
_POLL_S = 0.1
#: how long the server may take to answer a test before the runner looks the execution up (and
#: starts checking its ready JOINs, _nudge); not less: tests may share a correlation id
_ANSWER_S = 10.0
#: every how many polls a running execution is evaluated again (_nudge)
_NUDGE_EVERY = 5
_ENDED = frozenset({"COMPLETED", "FAILED", "FAILED_WITH_TERMINAL_ERROR", "CANCELED", "SKIPPED",
                    "TIMED_OUT", "COMPLETED_WITH_ERRORS"})  # fmt: skip

Outcome = Literal["passed", "failed", "error"]


@dataclass(frozen=True)
class TestResult:
    test: Resource
    workflow: str
    version: int | None
    outcome: Outcome
    failures: tuple[str, ...]
    seconds: float
    status: str | None = None  # the workflow's last status
    path: tuple[str, ...] = ()  # the tasks as they ran
    #: every execution it started (sub-workflows included), all removed from the server since
    executions: tuple[str, ...] = ()


def run_tests(client: ConductorClient, tests: Sequence[Resource], resources: Sequence[Resource],
              *, jobs: int = 4, timeout: float | None = None,
              on_result: Callable[[TestResult], None] | None = None) -> list[TestResult]:  # fmt: skip
    """Run ``tests`` (``jobs`` at a time) against the workflows and task definitions of
    ``resources``; results in the order of ``tests``. Ctrl-C stops the runs in hand, which still
    remove what they started, then raises."""
    workflows = [r for r in resources if r.kind == "WorkflowDef"]
    taskdefs = {r.name: r for r in resources if r.kind == "TaskDef"}
    run = uuid.uuid4().hex[:8]
    stop = threading.Event()

    def one(test: Resource) -> TestResult:
        result = _run(
            client,
            test,
            workflows=workflows,
            taskdefs=taskdefs,
            run=run,
            timeout=timeout,
            stop=stop,
        )
        if on_result is not None:
            on_result(result)
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="metasync-test")
    try:
        futures = [pool.submit(one, test) for test in tests]
        return [future.result() for future in futures]
    except BaseException:
        stop.set()  # the runs in hand stop polling and clean up
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def _run(client: ConductorClient, test: Resource, *, workflows: Sequence[Resource],
         taskdefs: Mapping[str, Resource], run: str, timeout: float | None,
         stop: threading.Event) -> TestResult:  # fmt: skip
    spec = WorkflowTestSpec.model_validate(test.spec)
    workflow = target(test, workflows)
    assert workflow is not None, "validate checks that every test names a workflow in git"
    started = time.monotonic()

    def result(outcome: Outcome, failures: Sequence[str], execution: Mapping[str, Any] | None = None,
               runs: Sequence[TaskRun] = ()) -> TestResult:  # fmt: skip
        return TestResult(
            test, workflow.name, workflow.version, outcome, tuple(failures),
            time.monotonic() - started,
            str(execution.get("status")) if execution else None,
            tuple(r.describe() for r in runs),
        )  # fmt: skip

    request, refused = build(spec, workflow, workflows, taskdefs, run)
    if refused:
        return result("failed", refused)
    execution: Mapping[str, Any] | None = None
    sent = time.time()  # where the server's list of executions by start time is read from
    answered = threading.Event()  # the server's own test loop has ended
    try:
        execution = _start(client, request, min(timeout or spec.timeoutSeconds, _ANSWER_S),
                           deadline=started + (timeout or spec.timeoutSeconds),
                           answered=answered, stop=stop, since=sent)  # fmt: skip
        execution, waiting = _until_done(client, execution, request=request, started=started,
                                         timeout=timeout or spec.timeoutSeconds, stop=stop,
                                         answered=answered)  # fmt: skip
        runs = task_runs(execution)
        inside = _sub_workflow_runs(client, execution)
        failures = waiting or judge(spec, workflow, execution, runs, inside)
        done = result("failed" if failures else "passed", failures, execution, runs)
    except MetasyncError as exc:
        done = result("error", [exc.problem.message], execution)
    finally:
        if execution is not None:
            removed = _remove(client, str(execution.get("workflowId")))
        else:  # the server may have started it all the same (an error, a lost answer)
            removed = [
                i for found in _started(client, request, sent) for i in _remove(client, found)
            ]
    return replace(done, executions=tuple(removed))


def _started(client: ConductorClient, request: Mapping[str, Any], since: float) -> list[str]:
    try:
        found = _lookup(client, request, since)
    except MetasyncError:
        return []
    return [str(e["workflowId"]) for e in found if e.get("workflowId")]


def _lookup(client: ConductorClient, request: Mapping[str, Any], since: float,
            unlike: set[str] | None = None) -> list[Mapping[str, Any]]:  # fmt: skip
    """The executions this test request started, running or ended: those of its workflow and
    correlation id created since ``since``, whose input holds the request's. ``unlike``: the
    ids of other executions seen by earlier looks (not read again)."""
    found = client.correlated(str(request["name"]), str(request["correlationId"]),
                              version=int(request.get("version") or 1), since=since,
                              unlike=unlike)  # fmt: skip
    sent = request.get("input") or {}
    return [e for e in found if all((e.get("input") or {}).get(k) == v for k, v in sent.items())]


def _sub_workflow_runs(client: ConductorClient, execution: Mapping[str, Any],
                       prefix: str = "") -> list[TaskRun]:  # fmt: skip
    """The tasks the execution's sub-workflows ran, as ``<sub-workflow ref>/<ref>``."""
    found: list[TaskRun] = []
    for task in execution.get("tasks") or ():
        if task.get("taskType") != "SUB_WORKFLOW" or not task.get("subWorkflowId"):
            continue
        child = client.execution(str(task["subWorkflowId"]))
        if child is None:
            continue
        here = f"{prefix}{base_ref(str(task.get('referenceTaskName')))}/"
        found += [replace(r, ref=here + r.ref) for r in task_runs(child)]
        found += _sub_workflow_runs(client, child, here)
    return found


def _start(client: ConductorClient, request: Mapping[str, Any], wait: float, *,
           deadline: float, answered: threading.Event | None = None,
           stop: threading.Event | None = None, since: float | None = None) -> Mapping[str, Any]:  # fmt: skip
    """Start the test. The server answers once it stops feeding mocks, which can take it 20,000
    rounds (a sub-workflow waiting for a mock it has not got; on 3.15, a task it scheduled twice):
    past ``wait`` seconds, the execution is found by its correlation id and polled as usual,
    while the server goes on feeding mocks. 3.15 does not index a test's correlation id: there it
    is found among the executions of its workflow created since ``since`` (when the request was
    sent), running or ended (_lookup). Until it is found, the answer is awaited until the test's
    own ``deadline`` (at least 10 s more).
    ``answered`` is set once the server has answered: its test loop has ended; ``stop`` (Ctrl-C)
    ends the wait (what the server started is found and removed by the caller)."""
    answer: dict[str, Any] = {}
    sent = time.time() if since is None else since

    def call() -> None:
        try:
            answer["execution"] = client.test_workflow(dict(request))
            if answered is not None:  # (a lost answer tells nothing of the loop)
                answered.set()
        except BaseException as exc:  # handed to the test's own thread below
            answer["error"] = exc

    begun = time.monotonic()
    caller = threading.Thread(target=call, name="metasync-test-start", daemon=True)
    caller.start()
    caller.join(wait)
    if "error" in answer:
        raise answer["error"]
    if "execution" in answer:
        return dict(answer["execution"])
    name = str(request["name"])
    until = max(deadline, time.monotonic() + 10)
    others: set[str] = set()  # executions of other requests: read once
    while time.monotonic() < until:  # started as soon as the server took the request
        if stop is not None and stop.is_set():
            raise ServerError(f"{client.label}: the test of {name} was interrupted")
        found = _lookup(client, request, sent, others)
        if found:
            return max(found, key=lambda e: int(e.get("startTime") or 0))
        caller.join(0.2)
        if "execution" in answer:
            return dict(answer["execution"])
        if "error" in answer:
            raise answer["error"]
    raise ServerError(
        f"{client.label}: the test of {name} did not start within "
        f"{time.monotonic() - begun:.0f} s (the server had not answered its test request)"
    )


def _until_done(client: ConductorClient, execution: Mapping[str, Any], *, timeout: float,
                started: float, request: Mapping[str, Any], stop: threading.Event,
                answered: threading.Event) -> tuple[Mapping[str, Any], list[str]]:  # fmt: skip
    """Poll to a terminal state; what keeps it from one (a worker with no mock, the timeout, an
    interruption) as failures. While the server's own test loop feeds the execution (it has not
    ``answered``), the runner has the server evaluate only ready JOINs and executions with no
    running task: 3.15 evaluates an execution without a lock (its default), so an evaluation
    beside the loop's own may lose an update."""
    workflow_id = str(execution["workflowId"])
    polls = 0
    while str(execution.get("status")) not in TERMINAL:
        polls += 1
        if polls % _NUDGE_EVERY == 0:
            _nudge(client, execution, decide=answered.is_set())
        unmocked = _waiting_for_a_worker(client, execution, request)
        if unmocked:
            return execution, unmocked
        if stop.is_set():
            return execution, ["interrupted"]
        if time.monotonic() - started > timeout:
            return execution, [_hanging(execution, timeout)]
        time.sleep(_POLL_S)
        execution = client.execution(workflow_id) or execution
    return execution, []


def _nudge(client: ConductorClient, execution: Mapping[str, Any], *, decide: bool) -> None:
    """Have the server check every JOIN of the execution and its running sub-workflows whose
    forked tasks have all ended (_join_ready), and evaluate each of them again when ``decide`` or
    when all its tasks have ended: 3.15 now and then leaves an execution RUNNING whose tasks have
    all ended, and its test loop, which evaluates an execution only for a running task, spins
    on it until its 20,000th round."""
    workflow_id = str(execution["workflowId"])
    if decide or all(str(t.get("status")) in _ENDED for t in execution.get("tasks") or ()):
        client.decide(workflow_id)
    for task in execution.get("tasks") or ():
        if task.get("subWorkflowId") and str(task.get("status")) not in _ENDED:
            child = client.execution(str(task["subWorkflowId"]))
            if child is not None and str(child.get("status")) not in TERMINAL:
                _nudge(client, child, decide=decide)
            elif decide:
                client.decide(str(task["subWorkflowId"]))
        elif _join_ready(task, execution):
            client.reevaluate_task(workflow_id, str(task["taskId"]))


def _join_ready(task: Mapping[str, Any], execution: Mapping[str, Any]) -> bool:
    """A running JOIN whose forked tasks have all ended. The server checks a JOIN only when its
    queue message comes due, and 3.15 postpones it 2, 4, 8, 16, then 30 s after each check
    (conductor-oss checks it continuously for its first 10 s): a sub-workflow that ends just
    after a check keeps its parent's JOIN, and the test, waiting up to 30 s; deciding the
    execution does not check an asynchronous task."""
    if str(task.get("taskType")) != "JOIN" or str(task.get("status")) != "IN_PROGRESS":
        return False
    joined = (task.get("inputData") or {}).get("joinOn") or ()
    iteration = int(task.get("iteration") or 0) if task.get("loopOverTask") else 0
    ended = {
        str(t.get("referenceTaskName")): str(t.get("status")) in _ENDED
        for t in execution.get("tasks") or ()
    }
    refs = [f"{ref}__{iteration}" if iteration else str(ref) for ref in joined]
    return bool(refs) and all(ended.get(ref, False) for ref in refs)


def _waiting_for_a_worker(client: ConductorClient, execution: Mapping[str, Any],
                          request: Mapping[str, Any], prefix: str = "") -> list[str]:  # fmt: skip
    """The tasks (sub-workflows' included) that wait for a worker no mock stands in for: once
    the server stops feeding mocks, nothing else will complete them."""
    mocked = request.get("taskRefToMockOutput") or {}
    subs = request.get("subWorkflowTestRequest") or {}
    waiting = []
    for task in execution.get("tasks") or ():
        ref, kind = str(task.get("referenceTaskName")), str(task.get("taskType"))
        status = str(task.get("status"))
        if status not in ("SCHEDULED", "IN_PROGRESS"):
            continue
        if kind == "SUB_WORKFLOW" and task.get("subWorkflowId") and ref in subs:
            child = client.execution(str(task["subWorkflowId"]))
            if child is not None and str(child.get("status")) not in TERMINAL:
                waiting += _waiting_for_a_worker(client, child, subs[ref], f"{prefix}{ref}/")
            continue
        if system_task(kind):
            continue
        ref = prefix + ref
        attempt = int(task.get("retryCount") or 0) + 1
        outside = stood_in(kind)
        own = ref.removeprefix(prefix)
        if own not in mocked:
            waiting.append(
                f"{ref} ({outside}) reaches outside the server, and a test never does: mock it "
                f"(mocks: {{{ref}: {{output: ...}}}})" if outside else
                f"{ref} ({kind}) waits for a worker: the test has no mock for it (add "
                f"mocks: {{{ref}: {{output: ...}}}})"
            )  # fmt: skip
        elif attempt > len(mocked[own]):
            waiting.append(
                f"{ref} ({kind}) attempt {attempt} waits for a worker: the test mocks "
                f"{len(mocked[own])} attempt(s) (give mocks.{ref} one per attempt)"
            )
    return waiting


def _hanging(execution: Mapping[str, Any], timeout: float) -> str:
    open_tasks = [
        f"{t.get('referenceTaskName')} ({t.get('taskType')}, {t.get('status')})"
        for t in execution.get("tasks") or ()
        if str(t.get("status")) in ("SCHEDULED", "IN_PROGRESS")
    ]
    return (
        f"still {execution.get('status')} after {timeout:g} s"
        + (f": waiting on {', '.join(open_tasks)}" if open_tasks else "")
        + " (raise timeoutSeconds if it only needs longer)"
    )


def _remove(client: ConductorClient, workflow_id: str) -> list[str]:
    """The execution and every sub-workflow execution under it, gone from the server: their
    ids."""
    found: list[str] = []
    queue = [workflow_id]
    while queue:
        current = queue.pop(0)
        found.append(current)
        try:
            execution = client.execution(current)
        except MetasyncError:
            execution = None
        for task in (execution or {}).get("tasks") or ():
            if task.get("subWorkflowId"):
                queue.append(str(task["subWorkflowId"]))
    for current in found:  # the parent first: terminating it ends its children
        try:
            execution = client.execution(current)
            if execution is not None:
                running = str(execution.get("status")) not in TERMINAL
                client.remove_execution(current, running=running)
        except MetasyncError:
            continue
    return found


_SYSTEM = frozenset({
    "SWITCH", "DECISION", "FORK", "FORK_JOIN", "FORK_JOIN_DYNAMIC", "JOIN", "EXCLUSIVE_JOIN",
    "DO_WHILE", "SUB_WORKFLOW", "START_WORKFLOW", "INLINE", "LAMBDA", "JSON_JQ_TRANSFORM",
    "SET_VARIABLE", "TERMINATE", "WAIT", "HUMAN", "HTTP", "EVENT", "KAFKA_PUBLISH", "NOOP",
    "DYNAMIC", "JDBC", "WAIT_FOR_WEBHOOK", "USER_DEFINED",
})  # fmt: skip


def system_task(kind: str) -> bool:
    return kind in _SYSTEM or kind.startswith(("LLM_", "GENERATE_"))
