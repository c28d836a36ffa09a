"""`metasync test`: the environment's WorkflowTest documents, run on its server (or another)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from metasync.conductor.client import ConductorClient
from metasync.errors import ConfigError, Location, redact_url
from metasync.model.workflow_test import TEST_KIND
from metasync.plan.select import Selector, selected
from metasync.project import Project
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
        on_result: Callable[[TestResult], None] | None = None) -> TestRun:  # fmt: skip
    """Render ``env`` (overlays and variables applied), then run its tests on its server, or on
    ``server`` (a throwaway one): nothing is registered, and every execution is removed."""
    desired = project.render(env)
    tests = [t for t in desired.tests if selected(selectors, TEST_KIND, t.name, t.labels)]
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
