"""`metasync drift`: how each server differs from git, and which side moved."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from metasync.errors import MetasyncError, redact_url
from metasync.manifests.environment import load_environment
from metasync.operations.plan import plan as make_plan
from metasync.plan.drift import EnvironmentDrift, classify
from metasync.plan.select import Selector, nothing_selected
from metasync.project import Project


def drift(project: Project, envs: Sequence[str] = (),
          selectors: Sequence[Selector] = ()) -> list[EnvironmentDrift]:  # fmt: skip
    """How each environment's server differs from git, and which side moved; environments are
    read concurrently. An environment that cannot be checked carries its error."""
    names = list(envs) or project.environments
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
        found = list(pool.map(lambda env: _drift_of(project, env, selectors), names))
    # a selection that matches nothing anywhere would report "in sync" for ever: an error
    if (
        selectors
        and found
        and all(report.error is None and not matched for report, matched in found)
    ):
        problem = nothing_selected(selectors, f"in git or on the servers of {', '.join(names)}")
        raise MetasyncError(problem.message, hint=problem.hint)
    return [report for report, _ in found]


def _drift_of(project: Project, env: str,
              selectors: Sequence[Selector]) -> tuple[EnvironmentDrift, bool]:  # fmt: skip
    """The environment's drift, and whether the selection matched anything there."""
    try:
        # an audit: who last wrote each version not in git, also those a plan leaves unread
        planned = make_plan(project, env, selectors, every_version=True)
    except MetasyncError as exc:
        try:
            server = redact_url(load_environment(project.root, env).config.server.url)
        except MetasyncError:
            server = "?"
        return EnvironmentDrift(env, server, error=exc.problems[0]), True
    plan = planned.plan
    matched = bool(plan.changes or plan.unmanaged)
    drift = classify(plan, planned.live, project.mark)
    return EnvironmentDrift(env, plan.server, drift, ignored=plan.ignored), matched
