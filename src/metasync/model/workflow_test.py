"""``kind: WorkflowTest``: a test of a workflow, kept in manifests/ beside what it tests.

A test names a workflow (and version), its input, the outputs of chosen tasks by reference
(``mocks``: one output, or a list, one per attempt, for retries) and what must come of it
(``expect``). It is no Conductor object: plan, apply and export never see it; ``metasync test``
runs it on a server through ``POST /api/workflow/test``, where every task without a mock (SWITCH,
INLINE, JSON_JQ_TRANSFORM, DO_WHILE, FORK/JOIN, SET_VARIABLE, sub-workflows) runs for real.

References: a task inside a SUB_WORKFLOW is ``<sub-workflow task ref>/<its ref>``; a task inside
a DO_WHILE is its reference (every iteration), or ``<ref>__<n>`` for iteration n only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from metasync.errors import Problem, did_you_mean
from metasync.model.resource import Resource
from metasync.model.tasks import walk_tasks

TEST_KIND = "WorkflowTest"

Status = Literal["COMPLETED", "FAILED", "FAILED_WITH_TERMINAL_ERROR", "IN_PROGRESS"]
WorkflowStatus = Literal["COMPLETED", "FAILED", "TERMINATED", "TIMED_OUT", "RUNNING", "PAUSED"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Mock(_Strict):
    """What a task returns instead of running: its status and output."""

    status: Status = "COMPLETED"
    output: dict[str, Any] = Field(default_factory=dict)


class Expect(_Strict):
    #: the workflow's final status
    status: WorkflowStatus = "COMPLETED"
    #: values the workflow's output holds (a subset: keys not named are not compared)
    output: dict[str, Any] | None = None
    #: the references that ran, in order (retries of one task once; loop iterations by their
    #: reference without the ``__n``)
    tasks: list[str] | None = None
    #: references that ran (in any order) / that must not run
    ran: list[str] | None = None
    notRan: list[str] | None = None
    #: SWITCH (or DECISION) reference -> the case it took: the value its expression gave, or the
    #: case that ran (``defaultCase`` when no case matched)
    path: dict[str, str] | None = None
    #: DO_WHILE reference -> how many iterations it ran
    iterations: dict[str, int] | None = None
    #: reference -> values its input held as the server computed it (a subset)
    input: dict[str, dict[str, Any]] | None = None
    #: reference -> values its output held (a subset; the last attempt)
    taskOutput: dict[str, dict[str, Any]] | None = None
    #: words the workflow's reason for failing holds
    reason: str | None = None


class WorkflowTestSpec(_Strict):
    name: str
    workflow: str
    #: the workflow's version in git (default: its newest there)
    version: int | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    correlationId: str | None = None
    mocks: dict[str, Mock | list[Mock]] = Field(default_factory=dict)
    expect: Expect = Field(default_factory=Expect)
    #: how long the run may take before it counts as hanging
    timeoutSeconds: float = Field(30, gt=0)
    #: how many DO_WHILE iterations a mock by plain reference covers
    maxIterations: int = Field(50, ge=1)


def mock_list(mocks: Mock | list[Mock]) -> list[Mock]:
    return mocks if isinstance(mocks, list) else [mocks]


def target(test: Resource, workflows: Sequence[Resource]) -> Resource | None:
    """The workflow ``test`` runs: its version, or the newest in git."""
    named = [w for w in workflows if w.name == test.spec.get("workflow")]
    version = test.spec.get("version")
    if version is not None:
        named = [w for w in named if w.version == version]
    return max(named, key=lambda w: w.version or 0) if named else None


def references(workflow: Mapping[str, Any], by_name: Mapping[str, Resource],
               prefix: str = "", seen: frozenset[str] = frozenset()) -> Iterator[tuple[str, str]]:  # fmt: skip
    """(reference as a test names it, task type) of every task of ``workflow``, those of its
    sub-workflows in git included (``sub/inner``)."""
    for at in walk_tasks(workflow):
        ref = str(at.task.get("taskReferenceName") or "")
        kind = str(at.task.get("type") or "SIMPLE")
        yield prefix + ref, kind
        params = at.task.get("subWorkflowParam") or {}
        sub = by_name.get(str(params.get("name") or "")) if kind == "SUB_WORKFLOW" else None
        if sub is not None and sub.name not in seen:
            yield from references(sub.spec, by_name, f"{prefix}{ref}/", seen | {sub.name})


def check_tests(tests: Sequence[Resource], resources: Sequence[Resource]) -> list[Problem]:
    """Each test names a workflow in git, and references its tasks."""
    workflows = [r for r in resources if r.kind == "WorkflowDef"]
    by_name = {w.name: w for w in sorted(workflows, key=lambda w: w.version or 0)}
    problems: list[Problem] = []
    names: dict[str, Resource] = {}
    for test in tests:
        where = test.origin

        def at(path: tuple[str | int, ...], where: Any = where) -> Any:
            return where.locate(path, ".".join(map(str, path))) if where else None

        if test.name in names:
            problems.append(Problem(f"WorkflowTest {test.name} is defined twice", at(("name",)),
                                    "Give each test a name of its own."))  # fmt: skip
        names[test.name] = test
        workflow = target(test, workflows)
        if workflow is None:
            wanted = str(test.spec.get("workflow"))
            version = test.spec.get("version")
            problems.append(Problem(
                f"WorkflowTest {test.name}: no workflow {wanted}"
                + (f" v{version}" if version is not None else "") + " in git"
                + did_you_mean(wanted, sorted(by_name)),
                at(("workflow",)), "Name a workflow defined under manifests/ (or delete the test "
                "with the workflow it tested).",
            ))  # fmt: skip
            continue
        known = dict(references(workflow.spec, by_name))
        named: list[tuple[tuple[str | int, ...], str]] = [
            (("mocks", ref), ref) for ref in test.spec.get("mocks") or {}
        ]
        expect = test.spec.get("expect") or {}
        for field in ("tasks", "ran", "notRan"):
            named += [(("expect", field, i), ref) for i, ref in enumerate(expect.get(field) or [])]
        for field in ("path", "iterations", "input", "taskOutput"):
            named += [(("expect", field, ref), ref) for ref in expect.get(field) or {}]
        for path, ref in named:
            plain = _without_iteration(ref)
            if plain not in known:
                # a mock of a task this environment lacks is harmless (an overlay of another
                # environment adds it); an expectation of one could never hold
                mock = path[0] == "mocks"
                problems.append(Problem(
                    f"WorkflowTest {test.name}: {workflow.title} has no task {ref!r}"
                    + (" in this environment" if mock else "")
                    + did_you_mean(plain, sorted(known)),
                    at(path), "Name a taskReferenceName of the workflow (sub-workflow tasks: "
                    "<sub-workflow ref>/<ref>).", severity="warning" if mock else "error",
                    rule="test-mock-unknown-task" if mock else None,
                ))  # fmt: skip
    return problems


def _without_iteration(ref: str) -> str:
    head, sep, tail = ref.rpartition("__")
    return head if sep and tail.isdigit() else ref
