"""Versioning policy ``new-version`` (docs/environments.md, policy).

Git holds one version of each workflow; the server keeps the history. A workflow whose content
equals the newest live version is left alone; a changed one is registered as a new version,
max(live) + 1 (or git's own version when that is higher), and the older versions stay. A
SUB_WORKFLOW task that names a version of a workflow git holds is pinned to the version that will
carry git's content, so a parent always calls the child it was released with; the parent then
changes too, and becomes a new version itself. Unversioned references resolve to the newest
version when an execution starts, and are left as they are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from metasync.errors import Location, Problem, ValidationFailed
from metasync.model.kinds import KINDS
from metasync.model.resource import Resource
from metasync.model.tasks import callees_first, sub_workflows, walk_tasks

Key = tuple[str, str, int | None]
#: does this desired spec hold the same content as that live object (version aside)?
#: (kind, desired spec, live object) -> would writing the one leave the other as it is?
Same = Callable[[str, Mapping[str, Any], Mapping[str, Any]], bool]


class Versions:
    """The desired resources with each workflow's version chosen against the live ones."""

    def __init__(self, live: Mapping[Key, Mapping[str, Any]], resources: Sequence[Resource],
                 same: Same | None = None) -> None:  # fmt: skip
        #: desired resources, workflows at the version they will have on the server
        self.resources: list[Resource] = list(resources)
        #: a new version's key -> the live version it was compared with (and which stays)
        self.previous: dict[Key, Key] = {}
        #: live versions of the workflows git holds: history, never pruned nor listed
        self.history: set[Key] = set()
        if same is not None:
            self._choose(live, same)

    def _choose(self, live: Mapping[Key, Mapping[str, Any]], same: Same) -> None:
        workflows = [r for r in self.resources if KINDS[r.kind].versioned]
        _one_version_each(workflows)
        on_server: dict[str, list[int]] = {}
        for kind, name, version in live:
            if KINDS[kind].versioned and version is not None:
                on_server.setdefault(name, []).append(version)
        targets: dict[str, int] = {}
        chosen: dict[str, Resource] = {}
        calls = {r.name: sub_workflows(r.spec) for r in workflows}  # one version of each
        for resource in callees_first(workflows, lambda r: r.name, lambda r: r.spec,
                                      lambda r: calls[r.name]):  # fmt: skip
            # a workflow that calls none of these has nothing to re-pin
            spec = (
                _pinned(resource.spec, targets)
                if calls[resource.name] & targets.keys()
                else resource.spec
            )
            wanted = resource.version or 1
            newest = max(on_server.get(resource.name, ()), default=None)
            if newest is None:
                target = wanted
            elif wanted > newest:
                target = wanted
                self.previous[(resource.kind, resource.name, target)] = (resource.kind, resource.name, newest)  # fmt: skip
            elif same(
                resource.kind,
                {**spec, "version": newest},
                live[(resource.kind, resource.name, newest)],
            ):
                target = newest
            else:
                target = newest + 1
                self.previous[(resource.kind, resource.name, target)] = (resource.kind, resource.name, newest)  # fmt: skip
            targets[resource.name] = target
            if target != resource.version or spec is not resource.spec:
                spec = {**spec, "version": target}
            chosen[resource.name] = Resource(
                resource.kind, resource.name, target, spec, resource.labels, resource.origin
            )
            self.history |= {(resource.kind, resource.name, v) for v in on_server.get(resource.name, ())}  # fmt: skip
        self.resources = [chosen[r.name] if KINDS[r.kind].versioned else r for r in self.resources]


def _one_version_each(workflows: Sequence[Resource]) -> None:
    seen: dict[str, Resource] = {}
    problems = []
    for resource in workflows:
        first = seen.setdefault(resource.name, resource)
        if first is resource:
            continue
        where = (
            resource.origin.locate(("version",), "version")
            if resource.origin
            else Location(resource.title)
        )
        problems.append(Problem(
            f"{resource.title}: with policy.versioning new-version git holds one version of each "
            f"workflow (also {first.title}); the server keeps the older ones",
            where,
            "Keep the newest version in git and delete the others from manifests/ (they stay on "
            "the server), or use policy.versioning: in-place.",
        ))  # fmt: skip
    if problems:
        raise ValidationFailed(problems)


def _pinned(spec: Mapping[str, Any], targets: Mapping[str, int]) -> Mapping[str, Any]:
    """``spec`` with versioned SUB_WORKFLOW references to workflows in ``targets`` re-pinned."""
    repins = [
        at.path
        for at in walk_tasks(spec)
        if at.type == "SUB_WORKFLOW"
        and isinstance(params := at.task.get("subWorkflowParam"), Mapping)
        and params.get("name") in targets
        and "workflowDefinition" not in params  # inline: the server takes its name and version
        and params.get("version") is not None
        and params.get("version") != targets[str(params["name"])]
    ]
    if not repins:
        return spec
    copied: Any = copy.deepcopy(dict(spec))
    for path in repins:
        task = copied
        for part in path:
            task = task[part]
        params = task["subWorkflowParam"]
        params["version"] = targets[params["name"]]
    result: Mapping[str, Any] = copied
    return result
