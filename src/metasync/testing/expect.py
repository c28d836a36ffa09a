"""What ran, and whether it is what the test expects: each failure names the task reference and
the first difference."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metasync.model.resource import Resource
from metasync.model.tasks import walk_tasks
from metasync.model.workflow_test import WorkflowTestSpec

_FAILED = ("FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT", "CANCELED", "SKIPPED")


@dataclass(frozen=True)
class TaskRun:
    """One task as it ran: its attempts (retries) folded into one."""

    ref: str  # as the server names it: ``<ref>__<n>`` in a loop's iteration n
    type: str
    status: str  # of the last attempt
    attempts: int
    reason: str | None
    input: Mapping[str, Any]
    output: Mapping[str, Any]

    @property
    def base(self) -> str:
        return base_ref(self.ref)

    def describe(self) -> str:
        text = self.ref
        case = switch_case(self)
        if case is not None:
            text += f"[{case}]"
        if self.type == "DO_WHILE" and "iteration" in self.output:
            text += f"({self.output['iteration']} iterations)"
        if self.attempts > 1:
            text += f" x{self.attempts}"
        if self.status != "COMPLETED":
            text += f" {self.status}"
        return text


def base_ref(ref: str) -> str:
    head, sep, tail = ref.rpartition("__")
    return head if sep and tail.isdigit() else ref


def switch_case(run: TaskRun) -> str | None:
    if run.type not in ("SWITCH", "DECISION"):
        return None
    selected = run.output.get("selectedCase")
    if selected is None:
        result = run.output.get("evaluationResult") or run.output.get("caseOutput")
        selected = result[0] if isinstance(result, list) and result else result
    return None if selected is None else str(selected)


def task_runs(execution: Mapping[str, Any]) -> list[TaskRun]:
    """The execution's tasks in the order they were scheduled, retries folded (3.15 sometimes
    schedules a task twice over: the same attempt, folded too)."""
    runs: list[TaskRun] = []
    for task in sorted(execution.get("tasks") or (), key=lambda t: int(t.get("seq") or 0)):
        ref = str(task.get("referenceTaskName"))
        attempts = int(task.get("retryCount") or 0) + 1
        if runs and runs[-1].ref == ref:  # a retry of the task before
            runs.pop()
        inputs = task.get("inputData") or {}
        if task.get("taskType") == "SUB_WORKFLOW" and isinstance(inputs.get("workflowInput"), dict):
            inputs = inputs["workflowInput"]  # what the sub-workflow is given
        runs.append(TaskRun(
            ref, str(task.get("taskType")), str(task.get("status")), attempts,
            task.get("reasonForIncompletion"), inputs, task.get("outputData") or {},
        ))  # fmt: skip
    return runs


def judge(spec: WorkflowTestSpec, workflow: Resource, execution: Mapping[str, Any],
          runs: Sequence[TaskRun], inside: Sequence[TaskRun] = ()) -> list[str]:  # fmt: skip
    """Every way the execution differs from ``spec.expect``. ``runs`` are the workflow's tasks,
    ``inside`` its sub-workflows' (``<sub-workflow ref>/<ref>``)."""
    expect = spec.expect
    failures: list[str] = []
    status = str(execution.get("status"))
    every = [*runs, *inside]
    named = {r.ref: r for r in every}  # the last run of each reference
    by_base: dict[str, list[TaskRun]] = {}
    for r in every:
        by_base.setdefault(r.base, []).append(r)
    # a reference in a loop stands for its last iteration (``ref__<n>`` names iteration n)
    last = {**{base: found[-1] for base, found in by_base.items()}, **named}
    if status != expect.status:  # the first difference: what follows from it is noise
        return [f"the workflow ended {status}, expected {expect.status}"
                + _why(execution, runs, workflow)]  # fmt: skip
    reason = str(execution.get("reasonForIncompletion") or "")
    if expect.reason is not None and expect.reason not in reason:
        failures.append(f"the reason is {reason!r}, expected it to hold {expect.reason!r}")
    if expect.output is not None:
        difference = subset(expect.output, execution.get("output") or {}, "output")
        if difference:
            failures.append(f"workflow {difference}")
    if expect.tasks is not None:
        ran = _sequence(runs)
        if ran != expect.tasks:
            failures.append(_order(expect.tasks, ran))
    for ref in expect.ran or ():
        if ref not in last:
            failures.append(f"{ref} did not run (ran: {', '.join(_sequence(every)) or 'nothing'})")
    for ref in expect.notRan or ():
        if ref in last:
            failures.append(f"{ref} ran, expected it not to")
    for ref, case in (expect.path or {}).items():
        run = last.get(ref)
        if run is None:
            failures.append(f"{ref} (SWITCH) did not run, expected it to take {case!r}")
            continue
        value, label = switch_case(run), _case_taken(run, workflow)
        if case not in (value, label):  # the value it evaluated to, or the case that ran
            shown = repr(value) if value == label else f"{value!r} ({label})"
            failures.append(f"{ref} (SWITCH) took {shown}, expected {case!r}")
    for ref, count in (expect.iterations or {}).items():
        run = last.get(ref)
        got = run.output.get("iteration") if run else None
        if got != count:
            failures.append(f"{ref} (DO_WHILE) ran {got if run else 'no'} iteration(s), "
                            f"expected {count}")  # fmt: skip
    for field, expected_by_ref in (("input", expect.input), ("output", expect.taskOutput)):
        for ref, expected in (expected_by_ref or {}).items():
            run = last.get(ref)
            if run is None:
                failures.append(f"{ref} did not run, so its {field} cannot be compared")
                continue
            actual = run.input if field == "input" else run.output
            difference = subset(expected, actual, field)
            if difference:
                wiring = _wiring(workflow, ref, difference) if field == "input" else ""
                failures.append(f"{ref} {difference}{wiring}")
    return failures


def subset(expected: Any, actual: Any, path: str) -> str | None:
    """The first difference between ``expected`` and the part of ``actual`` it names (a mapping
    compares only its keys; ``{$regex: ...}`` matches a string, ``{$exists: false}`` an absent
    key); None when they agree."""
    if isinstance(expected, Mapping) and set(expected) <= {"$regex", "$exists"} and expected:
        if "$exists" in expected and expected["$exists"] is False:
            return None if actual is _MISSING else f"{path}: expected no value, got {actual!r}"
        if actual is _MISSING:
            return f"{path}: expected a value, got none"
        pattern = expected.get("$regex")
        if pattern is not None and not (isinstance(actual, str) and re.search(pattern, actual)):
            return f"{path}: expected a string matching {pattern!r}, got {actual!r}"
        return None
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{path}: expected a mapping, got {_shown(actual)}"
        for key, value in expected.items():
            found = subset(value, actual.get(key, _MISSING), f"{path}.{key}")
            if found:
                return found
        return None
    if actual is _MISSING:
        return f"{path}: expected {expected!r}, got nothing (no such key)"
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{path}: expected {expected!r}, got {_shown(actual)}"
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found = subset(want, got, f"{path}[{i}]")
            if found:
                return found
        return None
    if expected != actual or isinstance(expected, bool) != isinstance(actual, bool):
        return f"{path}: expected {expected!r}, got {_shown(actual)}"
    return None


class _Missing:
    def __repr__(self) -> str:
        return "nothing"


_MISSING: Any = _Missing()


def _shown(value: Any) -> str:
    return "nothing (no such key)" if value is _MISSING else repr(value)


def _sequence(runs: Sequence[TaskRun]) -> list[str]:
    """References as they ran, loop iterations by their plain reference, repeats folded."""
    found: list[str] = []
    for run in runs:
        if not found or found[-1] != run.base:
            found.append(run.base)
    return found


def _order(expected: Sequence[str], ran: Sequence[str]) -> str:
    listed = f"(ran: {', '.join(ran) or 'nothing'})"
    for i, (want, got) in enumerate(zip(expected, ran, strict=False)):
        if want != got:
            return f"task {i + 1} was {got}, expected {want} {listed}"
    if len(ran) < len(expected):
        return f"{expected[len(ran)]} did not run {listed}"
    after = f"after {expected[-1]}" if expected else "at all"
    return f"{ran[len(expected)]} ran, expected nothing {after} {listed}"


def _case_taken(run: TaskRun, workflow: Resource) -> str | None:
    """The case that ran: ``defaultCase`` when the value names none (a sub-workflow's SWITCH:
    the value)."""
    case = switch_case(run)
    for at in walk_tasks(workflow.spec):
        if at.task.get("taskReferenceName") == run.base:
            cases = at.task.get("decisionCases") or {}
            return case if case in cases else "defaultCase"
    return case


def _why(execution: Mapping[str, Any], runs: Sequence[TaskRun], workflow: Resource) -> str:
    """Which task made the workflow end as it did, and why."""
    failed = [r for r in runs if r.status in _FAILED]
    if failed:
        return ": " + "; ".join(
            f"{r.ref} ({r.type}) {r.status}" + (f": {r.reason}" if r.reason else "") for r in failed
        )
    reason = str(execution.get("reasonForIncompletion") or "")
    if not reason:
        return ""
    # the task the server could not even schedule: the one whose settings the reason quotes
    ran = {r.base for r in runs}
    for at in walk_tasks(workflow.spec):
        ref = str(at.task.get("taskReferenceName"))
        if ref in ran:
            continue
        quoted = [str(v) for v in at.task.values() if isinstance(v, str) and v]
        if any(re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", reason) for v in quoted):
            return f": {ref} ({at.task.get('type')}): {reason}"
    return f": {reason}"


def _wiring(workflow: Resource, ref: str, difference: str) -> str:
    """Where the input that differs comes from: the task's inputParameters expression."""
    key = difference.split(":", 1)[0].removeprefix("input.").split(".")[0].split("[")[0]
    for at in walk_tasks(workflow.spec):
        if at.task.get("taskReferenceName") == base_ref(ref):
            source = (at.task.get("inputParameters") or {}).get(key)
            if isinstance(source, str) and "${" in source:
                return f" (inputParameters.{key} is {source!r})"
    return ""
