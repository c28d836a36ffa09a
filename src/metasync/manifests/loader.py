"""Manifest documents -> desired resources (docs/manifests.md).

Every ``.yaml``/``.yml`` file under ``manifests/`` may hold several documents, each one envelope:
``apiVersion: metasync/v1``, ``kind``, ``metadata`` (name, labels) and ``spec`` (the Conductor JSON
object). Problems are collected, not raised one at a time, so one run reports all of them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from metasync.errors import MetasyncError, Problem, did_you_mean
from metasync.manifests.cache import FileHashes, file_key
from metasync.manifests.schema import problems_from
from metasync.manifests.variables import Lookup, Unresolved, substitute
from metasync.manifests.yamlio import DocumentLocator, parse_documents, read_text
from metasync.model.kinds import KINDS
from metasync.model.paths import display_path
from metasync.model.resource import Resource
from metasync.model.workflow_test import TEST_KIND, WorkflowTestSpec

API_VERSION = "metasync/v1"
MANIFESTS_DIR = "manifests"
_ENVELOPE = ("apiVersion", "kind", "metadata", "spec")
_METADATA = ("name", "labels")


@dataclass
class LoadResult:
    resources: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: ``kind: WorkflowTest`` documents: no server object, run by `metasync test`
    tests: list[Resource] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def manifest_files(root: Path) -> list[tuple[str, str, os.stat_result]]:
    """(display name, path, stat) of each manifest under ``root``, in the order of their parts
    (as ``rglob``'s); symlinked folders are not entered. With ``os.scandir``: one stat a file,
    no ``Path`` objects (10,000 files: a third of a second less)."""
    base = os.path.join(root, MANIFESTS_DIR)
    found: list[tuple[tuple[str, ...], str, str, os.stat_result]] = []

    def walk(folder: str, parts: tuple[str, ...]) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                walk(entry.path, (*parts, entry.name))
            elif os.path.splitext(entry.name)[1] in (".yaml", ".yml") and entry.is_file():
                with contextlib.suppress(OSError):  # gone meanwhile: as if never listed
                    at = (*parts, entry.name)
                    found.append((at, "/".join((MANIFESTS_DIR, *at)), entry.path, entry.stat()))

    if os.path.isdir(base):
        walk(base, ())
    return [(display, path, stat) for _, display, path, stat in sorted(found)]


ManifestSource = Iterable[tuple[str, Callable[[], str]]]


class FileReader:
    """Reads a manifest file; ``content_key`` names its content (for the cache). ``stat``: the
    file's, when it was listed (saves asking again)."""

    __slots__ = ("display", "path", "stat")

    def __init__(self, path: Path | str, display: str, stat: os.stat_result | None = None) -> None:
        self.path = path
        self.display = display
        self.stat = stat

    def __call__(self) -> str:
        return read_text(self.path, self.display)

    def content_key(self) -> str | None:
        return file_key(self.path)


def content_key(read: Callable[[], str], hashes: FileHashes | None = None) -> str | None:
    """What names a reader's content (a file's hash, a git blob's id); None when not known.
    ``hashes``: files' hashes remembered by their stat."""
    if hashes is not None and isinstance(read, FileReader):
        return hashes.of(read.path, read.stat, read.display)
    key = getattr(read, "content_key", None)
    return key() if callable(key) else None


def working_tree(root: Path) -> ManifestSource:
    """The manifests as they are on disk: (display name, reader) pairs."""
    return [
        (display, FileReader(path, display, stat)) for display, path, stat in manifest_files(root)
    ]


@dataclass
class FileLoad:
    """What loading one manifest file produced: each document's resource (None: refused), its
    locator and its problems, in order; and the file's own problems (unreadable, not YAML)."""

    documents: list[tuple[Resource | None, DocumentLocator, list[Problem]]]
    problems: list[Problem] = field(default_factory=list)


def load_file(display: str, read: Callable[[], str], lookup: Lookup) -> FileLoad:
    """Load one manifest file (what ``load_manifests`` does per file, before files are compared)."""
    try:
        text = read()
        docs = parse_documents(text, display, read)
    except MetasyncError as exc:
        return FileLoad([], list(exc.problems))
    # placeholders only where the file has any (looked for once per file, not per document)
    substitute_with = lookup if "((" in text else None
    documents = []
    for doc in docs:
        problems: list[Problem] = []
        documents.append((_document(doc.data, doc.locator, substitute_with, problems),
                          doc.locator, problems))  # fmt: skip
    return FileLoad(documents)


#: display name -> (content key, what loading the file gave): files loaded before, for
#: ``load_manifests`` to reuse where the content is the same
Loaded = dict[str, tuple[str, FileLoad]]


def load_manifests(root: Path, lookup: Lookup, source: ManifestSource | None = None, *,
                   known: Loaded | None = None, contents: Mapping[str, str | None] | None = None,
                   loaded: Loaded | None = None) -> LoadResult:  # fmt: skip
    """Load every manifest of ``source`` (default: the working tree under ``root``).

    ``known``: files loaded before, reused where ``contents`` (display name -> content key)
    says the file is the same; ``loaded`` receives every file's load with its content key."""
    result = LoadResult()
    seen: dict[tuple[str, str, int | None], DocumentLocator] = {}
    for display, read in working_tree(root) if source is None else source:
        content = contents.get(display) if contents is not None else None
        before = known.get(display) if known is not None and content is not None else None
        if before is not None and before[0] == content:
            file = before[1]
        else:
            file = load_file(display, read, lookup)
        if loaded is not None and content is not None:
            loaded[display] = (content, file)
        result.problems.extend(file.problems)
        for resource, locator, problems in file.documents:
            result.problems.extend(problems)
            if resource is None:
                continue
            first = seen.get(resource.key)
            if first is not None:  # lines are looked up only now: that costs a second parse
                here = locator.locate(("metadata", "name"), "metadata.name")
                there = first.locate(("metadata", "name"))
                result.problems.append(
                    Problem(
                        f"{resource.title} is defined twice: here and at {there.file}:{there.line}",
                        here,
                        "Keep one definition (a workflow's identity is its name and version).",
                    )
                )
                continue
            seen[resource.key] = locator
            (result.tests if resource.kind == TEST_KIND else result.resources).append(resource)
    result.resources.sort(key=Resource.sort_key)
    result.tests.sort(key=lambda t: t.name)
    return result


def _document(
    data: Any, locator: DocumentLocator, lookup: Lookup | None, problems: list[Problem]
) -> Resource | None:
    def fail(message: str, path: tuple[str | int, ...], hint: str | None = None) -> None:
        problems.append(Problem(message, locator.locate(path, ".".join(map(str, path))), hint))

    if not isinstance(data, dict):
        fail(
            f"a manifest document must be a mapping, not a {type(data).__name__}",
            (),
            "Start the document with apiVersion, kind, metadata and spec.",
        )
        return None
    errors_before = len(problems)
    for key in data:
        if key not in _ENVELOPE:
            fail(
                f"unknown field {key!r}{did_you_mean(str(key), _ENVELOPE)}",
                (key,),
                "A manifest document has apiVersion, kind, metadata and spec; "
                "Conductor fields go under spec.",
            )
    api = data.get("apiVersion")
    if api != API_VERSION:
        fail(
            "missing apiVersion" if api is None else f"unsupported apiVersion {api!r}",
            ("apiVersion",) if api is not None else (),
            f"Use `apiVersion: {API_VERSION}`.",
        )
    kind = data.get("kind")
    kinds = [*KINDS, TEST_KIND]
    if kind not in kinds:
        fail(
            "missing kind"
            if kind is None
            else f"unknown kind {kind!r}{did_you_mean(str(kind), kinds)}",
            ("kind",) if kind is not None else (),
            f"kind is one of: {', '.join(kinds)}.",
        )
    metadata = data.get("metadata")
    name: Any = None
    labels: dict[str, str] = {}
    if not isinstance(metadata, dict):
        fail(
            "missing metadata" if metadata is None else "metadata must be a mapping",
            ("metadata",),
            "Add `metadata: {name: <resource name>}`.",
        )
    else:
        for key in metadata:
            if key not in _METADATA:
                fail(
                    f"unknown field {key!r}{did_you_mean(str(key), _METADATA)}",
                    ("metadata", key),
                    "metadata has name and labels.",
                )
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            fail(
                "metadata.name must be a non-empty string",
                ("metadata", "name"),
                "Give the resource its Conductor name.",
            )
        raw_labels = metadata.get("labels", {})
        if not isinstance(raw_labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw_labels.items()
        ):
            fail(
                "metadata.labels must map strings to strings",
                ("metadata", "labels"),
                'Quote values that YAML would read as numbers or booleans ("true", "1").',
            )
        else:
            labels = raw_labels
    spec = data.get("spec")
    if not isinstance(spec, dict):
        fail(
            "missing spec" if spec is None else "spec must be a mapping",
            ("spec",),
            "spec holds the Conductor object, with Conductor's field names.",
        )
    if len(problems) > errors_before or not isinstance(spec, dict):
        return None
    assert isinstance(kind, str)
    assert isinstance(name, str)

    spec_locator = locator.within("spec")
    if lookup is not None:
        unresolved: list[Unresolved] = []
        spec = substitute(spec, lookup, unresolved)
        for u in unresolved:
            display = display_path(spec, u.path)
            problems.append(Problem(u.message, spec_locator.locate(u.path, display), u.hint))
        labels_locator = locator.within("metadata", "labels")
        unresolved_labels: list[Unresolved] = []
        labels = substitute(labels, lookup, unresolved_labels)
        for u in unresolved_labels:
            display = "metadata.labels." + ".".join(map(str, u.path))
            problems.append(Problem(u.message, labels_locator.locate(u.path, display), u.hint))
        if unresolved or unresolved_labels:
            return None
    spec_name = spec.get("name")
    if spec_name is None:
        spec = {"name": name, **spec}
    elif spec_name != name:
        fail(
            f"metadata.name {name!r} differs from spec.name {spec_name!r}",
            ("spec", "name"),
            "They name the same resource: make them equal, or drop spec.name.",
        )
        return None

    model = WorkflowTestSpec if kind == TEST_KIND else KINDS[kind].model
    try:
        model.model_validate(spec)
    except ValidationError as exc:
        found = problems_from(exc, model, spec, spec_locator, unknown="warning")
        problems.extend(found)
        if any(p.severity == "error" for p in found):
            return None
    version: int | None = None
    if kind != TEST_KIND and KINDS[kind].versioned:
        version = spec.get("version", 1)
    return Resource(kind, name, version, spec, labels, spec_locator)
