"""`metasync test`: the environment's WorkflowTest documents, run on its server (or another)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metasync.conductor.client import ConductorClient
from metasync.errors import ConfigError, Location, MetasyncError, redact_url
from metasync.manifests.gitref import checkout_at
from metasync.model.fingerprint import canonical_json
from metasync.model.resource import Resource
from metasync.model.tasks import walk_tasks
from metasync.model.workflow_test import TEST_KIND, target
from metasync.plan.select import Selector, selected
from metasync.project import Desired, Project
from metasync.testing.generate import generate as generate_test
from metasync.testing.runner import TestResult, run_tests

TEST_CALL_S = 120.0


@dataclass(frozen=True)
class TestRun:
    environment: str
    server: str
    results: tuple[TestResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.outcome == "passed" for r in self.results)


def run(project: Project, env: str, selectors: Sequence[Selector] = (), *,
        server: str | None = None, jobs: int = 4, timeout: float | None = None,
        changed_since: str | None = None,
        on_result: Callable[[TestResult], None] | None = None) -> TestRun:  # fmt: skip
    """Render ``env`` (overlays and variables applied), then run its tests on its server, or on
    ``server`` (a throwaway one): nothing is registered, and every execution is removed.
    ``changed_since`` (a commit) keeps the tests of what changed since: none is no error."""
    desired = project.render(env)
    tests = [t for t in desired.tests if selected(selectors, TEST_KIND, t.name, t.labels)]
    if changed_since is not None:
        tests = _covering_changes(project, env, desired, tests, changed_since)
        if not tests:
            return TestRun(env, "", ())
    if not tests:
        raise ConfigError(
            f"no WorkflowTest {'matches the selection' if desired.tests else 'in the project'} "
            f"for {env}",
            location=Location("manifests/"),
            hint="A test is a manifest document of kind WorkflowTest beside the workflows "
            "(README: Workflow tests)." if not desired.tests else "Select tests by name "
            f"(`--select name=GLOB`): {', '.join(t.name for t in desired.tests[:5])}...",
        )  # fmt: skip
    # the server answers a test once it stops feeding mocks: when a sub-workflow waits for one
    # it has not got, that takes it 20,000 rounds (tens of seconds on conductor-oss)
    if server:
        label = f"the test server ({redact_url(server)})"
        client = ConductorClient.connect(server, label=label, timeout=TEST_CALL_S)
    else:
        client = project.connect(env, timeout=TEST_CALL_S)
    with client:
        results = run_tests(client, tests, desired.resources, jobs=jobs, timeout=timeout,
                            on_result=on_result)  # fmt: skip
        return TestRun(env, client.url, tuple(results))


def generate(project: Project, env: str, name: str, execution: str, *,
             server: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A WorkflowTest document pinning what execution ``execution`` of ``env``'s server (or
    ``server``) did."""
    if server:
        client = ConductorClient.connect(server, label=f"the server {redact_url(server)}")
    else:
        client = project.connect(env)
    with client:
        return generate_test(client, execution, name)


def _covering_changes(project: Project, env: str, desired: Desired, tests: Sequence[Resource],
                      base: str) -> list[Resource]:  # fmt: skip
    """The tests that are new or changed since ``base``, or whose workflow differs from
    ``base``'s rendering for ``env``: itself, a sub-workflow it calls, a task definition it
    uses."""
    with checkout_at(project.root, base) as old_root:
        try:
            before = Project(old_root).desired(env)
        except MetasyncError:
            before = Desired(env, [])
    old = {r.key: canonical_json(r.spec) for r in before.resources}
    old_tests = {t.name: canonical_json(t.spec) for t in before.tests}
    moved = {r.name for r in desired.resources if old.get(r.key) != canonical_json(r.spec)}
    by_name = {r.name: r for r in desired.resources if r.kind == "WorkflowDef"}
    kept = []
    for test in tests:
        workflow = target(test, [r for r in desired.resources if r.kind == "WorkflowDef"])
        covered = _closure(workflow.spec, by_name) if workflow else set()
        if old_tests.get(test.name) != canonical_json(test.spec) or covered & moved:
            kept.append(test)
    return kept


def _closure(spec: Mapping[str, Any], by_name: Mapping[str, Resource],
             seen: frozenset[str] = frozenset()) -> set[str]:  # fmt: skip
    """The names a workflow depends on: itself, its tasks' definitions, its sub-workflows'."""
    names = {str(spec.get("name"))}
    for at in walk_tasks(spec):
        names.add(str(at.task.get("name")))
        params = at.task.get("subWorkflowParam") or {}
        sub = by_name.get(str(params.get("name") or ""))
        if sub is not None and sub.name not in seen:
            names |= _closure(sub.spec, by_name, seen | {sub.name})
    return names
