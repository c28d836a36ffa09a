"""Adopting live edits (``drift --adopt``): rewrite git so it says what the server holds.

For each object edited on the server, the change goes where it belongs:

* into the **manifest** (manifests/), edited in place so its comments, layout and the rest of the
  file stay, when the environment runs the working tree's manifests, has no overlay for the
  object, and no changed value comes from a variable: a change everyone shares;
* into the environment's **overlay** otherwise (a pinned environment, an object it already
  overlays, a value that is a ``((vars.X))``): the overlay is recomputed from the manifest to the
  server's object (docs/environments.md, by task reference), replacing the old one.

Pure: text in, text out; the caller reads the files and commits the result on a branch.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from metasync.adopt.changes import Change, DeleteTask, Edit, Unsaid
from metasync.adopt.export import minimal
from metasync.adopt.factor import overlay
from metasync.conductor.normalize import Flavour
from metasync.model.tasks import find_task


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, order and quotes kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def load_all(text: str) -> list[Any]:
    return list(_yaml().load_all(text))


def dump_all(documents: Sequence[Any]) -> str:
    stream = io.StringIO()
    _yaml().dump_all(documents, stream)
    return stream.getvalue()


# -- applying edits to a manifest, in place -------------------------------------------------------


def edit_manifest(text: str, index: int, changes: Sequence[Change]) -> str:
    """The manifest file ``text`` with ``changes`` made to the spec of its document ``index``."""
    documents = load_all(text)
    spec = documents[index]["spec"]
    for change in changes:
        if isinstance(change, Edit):
            _edit(spec, change)
        elif isinstance(change, DeleteTask):
            holder, i = _find(spec.get("tasks") or [], change.ref)
            del holder[i]
        else:
            anchor = change.after or change.before or ""
            holder, i = _find(spec.get("tasks") or [], anchor)
            holder.insert(i + 1 if change.after else i, _commented(change.task))
    return dump_all(documents)


def _edit(spec: Any, change: Edit) -> None:
    node = spec
    if change.ref is not None:
        holder, i = _find(spec.get("tasks") or [], change.ref)
        node = holder[i]
    for key in change.keys[:-1]:
        if isinstance(node.get(key), str) and "((" in node[key]:
            raise Unsaid(f"{key} comes from a variable")
        if not isinstance(node.get(key), Mapping):
            if change.remove:
                return
            node[key] = CommentedMap()
        node = node[key]
    last = change.keys[-1]
    current = node.get(last)
    if isinstance(current, str) and "((" in current:
        raise Unsaid(f"{last} comes from a variable")
    if change.remove:
        node.pop(last, None)
    else:
        node[last] = _commented(change.value)


def _find(tasks: Any, ref: str) -> tuple[Any, int]:
    found = find_task(tasks, ref)
    if found is None:
        raise Unsaid(f"task {ref} is not in the manifest as written")
    return found


def _commented(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _commented(v)
        return out
    if isinstance(value, list):
        return CommentedSeq([_commented(v) for v in value])
    return value


# -- or the environment's overlay --------------------------------------------------------------


def overlay_document(key: tuple[str, str, int | None], base: Mapping[str, Any],
                     live: Mapping[str, Any], flavour: Flavour) -> dict[str, Any] | None:  # fmt: skip
    """The overlay that turns the manifest ``base`` into the server's ``live``; None if none is
    needed."""
    kind, name, version = key
    body = overlay(kind, minimal(kind, base, flavour), minimal(kind, live, flavour), flavour)
    if not body:
        return None
    metadata: dict[str, Any] = {"name": name}
    if version is not None:
        metadata["version"] = version
    return {"kind": kind, "metadata": metadata, **body}


def replace_document(
    text: str | None, index: int | None, document: Mapping[str, Any] | None
) -> str:
    """``text`` (an overlay file, or None for a new one) with its document ``index`` replaced by
    ``document`` (None: removed; index None: appended)."""
    documents = load_all(text) if text else []
    if index is None:
        if document is not None:
            documents.append(_commented(document))
    elif document is None:
        del documents[index]
    else:
        new = _commented(document)
        old = documents[index]
        if hasattr(old, "ca") and old.ca.comment:  # the comment above the document stays
            new.ca.comment = old.ca.comment
        documents[index] = new
    return dump_all(documents) if documents else ""
