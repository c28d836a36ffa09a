"""Fields other systems manage (environment.yaml ``ignore:``), left out of plans and drift. Pure.

For an object on the server, what apply writes carries the server's value of each ignored field
(``keep_live``): another field's change must not overwrite what someone else manages. Both sides
of the comparison leave the ignored fields out (``without``), so neither side's change to them is
a difference. An object not on the server is created with git's values. A task git adds to a
workflow has no server value: it keeps git's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, Protocol

from metasync.model.fieldpath import FieldPath
from metasync.model.tasks import walk_tasks

_MISSING: Any = object()


class Rule(Protocol):
    """One ``ignore:`` entry (manifests/environment.py's Ignore)."""

    @property
    def field_path(self) -> FieldPath: ...

    @property
    def reason(self) -> str: ...

    def matches(self, kind: str, name: str) -> bool: ...


def rules_for(rules: Sequence[Rule], kind: str, name: str) -> list[FieldPath]:
    return [rule.field_path for rule in rules if rule.matches(kind, name)]


def keep_live(spec: Mapping[str, Any], live: Mapping[str, Any],
              paths: Sequence[FieldPath]) -> dict[str, Any]:  # fmt: skip
    """``spec`` with the server's value of each ignored field (absent there: absent here)."""
    out = copy.deepcopy(dict(spec))
    for path in paths:
        theirs = dict(_anchors(live, path))
        for where, node in _anchors(out, path):
            if where not in theirs:  # a task git adds: git's value
                continue
            value = _get(theirs[where], path.keys)
            if value is _MISSING:
                _delete(node, path.keys)
            else:
                _set(node, path.keys, copy.deepcopy(value))
    return out


def without(spec: Mapping[str, Any], paths: Sequence[FieldPath]) -> dict[str, Any]:
    """``spec`` without the ignored fields."""
    if not paths:
        return dict(spec)
    out = copy.deepcopy(dict(spec))
    for path in paths:
        for _, node in _anchors(out, path):
            _delete(node, path.keys)
    return out


def differing(git: Mapping[str, Any], live: Mapping[str, Any],
              paths: Sequence[FieldPath]) -> list[str]:  # fmt: skip
    """The ignored fields (concrete paths) where git and the server hold different values."""
    found: dict[str, None] = {}
    for path in paths:
        ours, theirs = dict(_anchors(git, path)), dict(_anchors(live, path))
        for where in dict.fromkeys([*ours, *theirs]):
            mine = _get(ours[where], path.keys) if where in ours else _MISSING
            other = _get(theirs[where], path.keys) if where in theirs else _MISSING
            if where in ours and where in theirs and mine != other:
                found[f"{where}.{'.'.join(path.keys)}" if where else ".".join(path.keys)] = None
    return list(found)


def _anchors(doc: Mapping[str, Any], path: FieldPath) -> Iterator[tuple[str, Any]]:
    """Where ``path``'s keys start: the object itself, or each task it names (by reference)."""
    if path.tasks is None:
        yield "", doc
        return
    for at in walk_tasks(doc):
        ref = at.task.get("taskReferenceName")
        if isinstance(ref, str) and fnmatchcase(ref, path.tasks):
            yield f"tasks[ref={ref}]", at.task


def _get(node: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _delete(node: Any, keys: Sequence[str]) -> None:
    parent = _get(node, keys[:-1])
    if isinstance(parent, dict):
        parent.pop(keys[-1], None)


def _set(node: Any, keys: Sequence[str], value: Any) -> None:
    for key in keys[:-1]:
        if not isinstance(node, dict):
            return
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if isinstance(node, dict):
        node[keys[-1]] = value
