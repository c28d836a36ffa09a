"""The registry of resource kinds: one module per kind (``Kind`` in base.py says what a module
declares). Adding a kind is a module and a line here."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from metasync.model.conductor import ConductorModel
from metasync.model.kinds import event_handler, schedule, taskdef, workflow
from metasync.model.kinds.base import Endpoints, Kind, Reference

KINDS: dict[str, Kind] = {
    k.name: k for k in (taskdef.KIND, workflow.KIND, event_handler.KIND, schedule.KIND)
}


def _merged_defaults() -> dict[type[ConductorModel], dict[str, Any]]:
    merged: dict[type[ConductorModel], dict[str, Any]] = {}
    for kind in KINDS.values():
        for model, values in kind.defaults.items():
            merged.setdefault(model, {}).update(values)
    return merged


#: every model's defaults, nested models', fields holding nested models, and free-form fields,
#: over all kinds (normalisation walks them all the same way)
DEFAULTS = MappingProxyType(_merged_defaults())
NESTED = MappingProxyType({f: m for k in KINDS.values() for f, m in k.nested.items()})
FREE_FORM = frozenset().union(*(k.free_form for k in KINDS.values()))
#: kinds in apply order (deletes go in reverse)
IN_ORDER = tuple(sorted(KINDS.values(), key=lambda k: k.order))

__all__ = ["DEFAULTS", "FREE_FORM", "IN_ORDER", "KINDS", "NESTED", "Endpoints", "Kind", "Reference"]
