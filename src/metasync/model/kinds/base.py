"""What a kind of object is, as one value: a plug-in (one module per kind, the registry in
``__init__``). The planner, the applier, the pruner, the exporter, drift and the server client
read kinds through this interface and never name one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from metasync.model.conductor import ConductorModel
from metasync.model.flavour import FLAVOURS, Flavour
from metasync.model.kinds.checking import Check


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a server keeps objects of a kind: paths under ``/api``, with ``{name}`` and
    ``{version}`` filled in."""

    #: every object, in full (a JSON list)
    list: str
    create: str
    update: str
    delete: str
    #: one object by name (``?version=`` for a versioned kind); None: found in the list
    get: str | None = None
    #: the create takes a list of objects in one request (task definitions)
    create_batch: bool = False
    #: the update takes a list of objects in one request (workflows)
    update_batch: bool = False
    #: new objects may be sent in the update's list, which upserts (workflows): once the server's
    #: names and versions show none of them is there, so that one made meanwhile is never
    #: overwritten (a server without that index gets them one by one)
    create_via_update: bool = False
    update_method: Literal["PUT", "POST"] = "PUT"
    #: the create is a POST that replaces what is there: safe to send twice (no read-back)
    create_is_upsert: bool = False
    #: a server without this kind answers the list with 404 (it is not an error)
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Reference:
    """One object naming another: a workflow's task (a task definition), its sub-workflow, a
    handler's or a schedule's workflow. ``version`` None: whichever version is newest."""

    kind: str
    name: str
    version: int | None = None
    via: str | None = None  # shown after the user's title, e.g. "failureWorkflow"


def _no_references(spec: Mapping[str, Any]) -> Iterable[Reference]:
    return ()


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    model: type[ConductorModel]
    #: identity includes the version (workflows) or the name alone
    versioned: bool
    #: apply order: lower first (task defs, workflows, handlers, schedules); deletes in reverse
    order: int
    #: the folder under manifests/ an export writes this kind to
    folder: str
    endpoints: Endpoints
    #: how metasync knows it wrote an object: its ownerApp field, or the project's ledger (a kind
    #: with no field for it), under ``ledger_key``
    owned_by: Literal["ownerApp", "ledger"] = "ownerApp"
    ledger_key: str = ""
    #: the defaults the server fills in, per model (the kind's own and the nested ones); those of
    #: fields only conductor-oss knows are filled for that flavour only (model OSS_ONLY)
    defaults: Mapping[type[ConductorModel], Mapping[str, Any]] = field(default_factory=dict)
    #: nested models by the field that holds them (lists and maps of them included)
    nested: Mapping[str, type[ConductorModel]] = field(default_factory=dict)
    #: fields whose value is data, not structure: compared as they are
    free_form: frozenset[str] = frozenset()
    #: what an object names (what prune must not delete while it stays)
    references: Callable[[Mapping[str, Any]], Iterable[Reference]] = _no_references
    #: live fields an in-place update echoes (the server would reset them otherwise)
    keep_on_update: tuple[str, ...] = ()
    #: fields that are live state, not configuration (a schedule's paused): left out of plans and
    #: kept as the server has them on update, unless the environment's policy.manageLiveState
    #: says git decides them (a create always sends what git says)
    live_state: tuple[str, ...] = ()
    #: objects of this kind call one another (workflows): written callees first
    calls_its_own: bool = False
    #: its ``tasks`` are a list keyed by taskReferenceName: diffs, overlays and edits go by
    #: reference, not by position (workflows)
    keyed_tasks: bool = False
    #: objects have executions (workflows): counted before a delete or in-place update
    executions: bool = False
    #: the server's dry-run validation of one object (nothing stored), if it has one
    validate: str | None = None
    #: the flavours that have this kind
    flavours: tuple[Flavour, ...] = FLAVOURS
    #: offline checks of one object (model/checks.py runs them with the common ones)
    check: Check | None = None
