"""Offline checks: what the target server would reject, and what is certainly wrong.

Errors are what the environment's server flavour refuses to register (docs/servers.md has each
flavour's rules, observed on real servers); a rule only one flavour enforces is an error for that
flavour, nothing for the other, and a warning naming the flavour while the flavour is not known.
Warnings are likely mistakes the server accepts, such as a SIMPLE task with no task definition
anywhere in the project, or a sub-workflow that the project does not define. Neither flavour
validates anything inside a DO_WHILE's ``loopOver`` at registration, so what would be an error
there is a warning: the server takes it, and the loop fails at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

from metasync.errors import Problem
from metasync.model.flavour import FLAVOUR_NAMES, Flavour
from metasync.model.kinds import KINDS
from metasync.model.kinds.checking import Index, Reporter
from metasync.model.resource import Resource


def check_resources(resources: Sequence[Resource], flavour: Flavour | None = None) -> list[Problem]:
    """Every problem across the project's resources (one environment's rendering), by the rules of
    the target server's ``flavour`` (None: not known yet): the common ones, then each kind's
    (model/kinds/)."""
    index = Index(resources)
    problems: list[Problem] = []
    for resource in resources:
        report = Reporter(resource, problems, flavour)
        _common(resource, report)
        check = KINDS[resource.kind].check
        if check is not None:
            check(resource.spec, report, index)
    return problems


def _common(resource: Resource, report: Reporter) -> None:
    kind = KINDS[resource.kind]
    if report.flavour is not None and report.flavour not in kind.flavours:
        # while the flavour is not known, the plan finds out from the server (no endpoint)
        names = " and ".join(FLAVOUR_NAMES[f] for f in kind.flavours)
        report("error", f"{FLAVOUR_NAMES[report.flavour]} has no {kind.name} (only {names} has)",
               ("name",), f"Run this environment on {names}, or keep {kind.name} manifests out of "
               "this project while it runs here.")  # fmt: skip
    managed = kind.model.SERVER_MANAGED
    for key in resource.spec:
        if key in managed:
            report(
                "warning",
                f"{key} is written by the server or by metasync; the value here is ignored",
                (key,),
                f"Remove {key}.",
                rule="server-managed-field",
            )
