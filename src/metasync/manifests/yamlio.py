"""YAML reading with libyaml, line numbers kept, and errors a person can act on.

Documents are composed and constructed by libyaml's ``CSafeLoader``. Node trees are not kept (they
cost several times the data's memory): when a problem needs a line, the file's text is composed
again and the key path looked up in its nodes, so the happy path pays nothing.
Two departures from plain ``safe_load``: timestamps stay strings (Conductor JSON has no dates), and a
key repeated in one mapping is an error instead of silently keeping the last value.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from metasync.errors import Location, ManifestError, MetasyncError, source_snippet

_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.CSafeLoader):
    """CSafeLoader without timestamps and with duplicate keys as errors."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                if key in seen and key != "<<":
                    first = seen[key].start_mark.line + 1
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first at line {first}); a key may appear once per mapping",
                        key_node.start_mark,
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_str(self, node: yaml.ScalarNode) -> str:
        # thousands of workflows repeat the same keys and short values: share one copy of each
        value: str = self.construct_scalar(node)
        return sys.intern(value) if len(value) <= 64 else value


_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_yaml_str)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


class _Source:
    """A file's text; its node trees are composed again only when a line is asked for.

    A manifest's source, loaded or from the cache (manifests/cache.py), has no text: ``read``
    gives it, from the same file (whose content was loaded or is the cache's key), the first time
    a line is asked for."""

    __slots__ = ("_nodes", "_read", "_text", "file", "size")

    def __init__(self, text: str | None, file: str = "", *, size: int | None = None,
                 read: Callable[[], str] | None = None) -> None:  # fmt: skip
        self._text = text
        self._read = read
        self.file = file
        self.size = len(text) if text is not None else (size or 0)
        self._nodes: list[yaml.Node | None] | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            try:
                self._text = self._read() if self._read is not None else ""
            except MetasyncError:  # gone or unreadable since: no line to give
                self._text = ""
        return self._text

    def node(self, index: int) -> yaml.Node | None:
        if self._nodes is None:
            nodes: list[yaml.Node | None] = []
            loader = _Loader(self.text)
            try:
                while loader.check_node():
                    nodes.append(loader.get_node())
            except yaml.YAMLError:
                pass  # only reached for text that parsed before: keep what was composed
            finally:
                loader.dispose()
            self._nodes = nodes
        return self._nodes[index] if index < len(self._nodes) else None


@dataclass(frozen=True, slots=True)
class DocumentLocator:
    """Locates key paths of one document (``base`` prefixes paths, e.g. ``("spec",)``)."""

    file: str
    source: _Source
    index: int
    base: tuple[str | int, ...] = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (DocumentLocator, (self.file, self.source, self.index, self.base))  # fast to load

    def locate(self, path: Sequence[str | int], display: str = "") -> Location:
        """The file now, its line when asked: thousands of warnings, of which a few are shown,
        must not each compose their file again."""
        full = (*self.base, *path)
        anchor = (self.index, full, self.source.size)
        return Location(self.file, path=display, find=partial(self.line, full), anchor=anchor)

    def line(self, full: tuple[str | int, ...]) -> int | None:
        node = self.source.node(self.index)
        return line_of(node, full) if node is not None else None

    def within(self, *base: str | int) -> DocumentLocator:
        return DocumentLocator(self.file, self.source, self.index, (*self.base, *base))


@dataclass(frozen=True, slots=True)
class YamlDocument:
    data: Any
    locator: DocumentLocator


def line_of(node: yaml.Node, path: Sequence[str | int]) -> int:
    """1-based line of ``path`` in ``node``; the deepest existing part when the path runs out."""
    line: int = node.start_mark.line + 1
    current = node
    for part in path:
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    current = value_node
                    break
            else:
                return line
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(current.value):
                return line
            current = current.value[part]
            line = current.start_mark.line + 1
        else:
            return line
    return line


def read_text(path: Path | str, display: str) -> str:
    """Read a UTF-8 text file, refusing binaries with a clear message."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ManifestError(
            f"cannot read the file: {exc.strerror}", location=Location(display)
        ) from None
    return decode_text(raw, display)


def decode_text(raw: bytes, display: str) -> str:
    """UTF-8 text from bytes (a file or a git blob); binaries are refused with a clear message."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ManifestError(
            "not a text file (it contains NUL bytes); a manifest must be UTF-8 YAML",
            location=Location(display, raw.count(b"\n", 0, nul) + 1),
            hint="Remove the file or give it a name that does not end in .yaml/.yml.",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "a manifest must be UTF-8 YAML",
            location=Location(display, raw.count(b"\n", 0, exc.start) + 1),
            hint="Re-save the file as UTF-8, or remove it if it is not a manifest.",
        ) from None


def parse_documents(text: str, display: str, read: Callable[[], str] | None = None
                    ) -> list[YamlDocument]:  # fmt: skip
    """Every non-empty document of ``text``; YAML errors become ManifestError with file:line.

    ``read``: gives ``text`` again, when a line is asked for; then the text is not kept (10,000
    workflows: 50 MiB held for the few lines a run may show)."""
    docs: list[YamlDocument] = []
    source = _Source(None, display, size=len(text), read=read) if read else _Source(text, display)
    loader = _Loader(text)
    try:
        index = 0
        aliases = "*" in text  # an alias is written *name: without one, nothing to bound
        while loader.check_node():
            node = loader.get_node()
            if aliases and node is not None:
                _bounded(node, display)
            data = loader.construct_document(node) if node is not None else None
            if data is not None:
                docs.append(YamlDocument(data, DocumentLocator(display, source, index)))
            index += 1
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, text, display) from None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        raise ManifestError(f"invalid YAML: {exc}", location=Location(display)) from None
    finally:
        loader.dispose()
    return docs


#: the values one document may stand for with its aliases expanded: far above any real definition
#: (a 20-task workflow is a few hundred), far below what a "billion laughs" expands to
MAX_EXPANDED_VALUES = 1_000_000


def _bounded(root: yaml.Node, display: str) -> None:
    """Refuse a document whose aliases expand beyond MAX_EXPANDED_VALUES, or refer to
    themselves: everything after loading walks the expanded values. Linear in the nodes."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise ManifestError(
                "an alias refers to a value that contains it (a recursive structure)",
                location=Location(display, node.start_mark.line + 1),
                hint="Conductor definitions are trees: write the value out instead of the alias.",
            )
        open_.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        open_.discard(key)
        if total > MAX_EXPANDED_VALUES:
            raise ManifestError(
                f"this document's aliases expand to more than {MAX_EXPANDED_VALUES:,} values",
                location=Location(display, root.start_mark.line + 1),
                hint="Write the values out, or nest fewer aliases (an alias bomb is refused).",
            )
        sizes[key] = total
        return total

    try:
        size(root)
    except RecursionError:
        raise ManifestError(
            "this document nests too deeply to be read",
            location=Location(display, root.start_mark.line + 1),
            hint="Conductor definitions are a few levels deep: check the indentation.",
        ) from None


_UNQUOTED_EXPR = re.compile(r"(?P<key>[\w.-]+\s*:\s*)?(?P<expr>\$\{[^}\s]*\}?)")


def _at(display: str, text: str, mark: yaml.Mark | None) -> Location:
    """file:line:column and the source line with a caret, for a libyaml mark (0-based)."""
    if mark is None:
        return Location(display)
    line, column = mark.line + 1, mark.column + 1
    return Location(display, line, column=column, snippet=source_snippet(text, line, column))


def _yaml_error(exc: yaml.MarkedYAMLError, text: str, display: str) -> ManifestError:
    mark = exc.problem_mark or exc.context_mark
    location = _at(display, text, mark)
    context = exc.context or ""
    problem = exc.problem or ""
    tab = mark is not None and text[mark.index : mark.index + 1] == "\t"
    if mark is not None and tab and ("cannot start any token" in problem or "tab" in problem):
        indenting = not text[text.rfind("\n", 0, mark.index) + 1 : mark.index].strip()
        return ManifestError(
            "a tab character indents this line; YAML indents with spaces"
            if indenting
            else "a tab character here: YAML takes no tab in this place",
            location=location,
            hint="Replace the tab with spaces (as many as the lines around it use).",
        )
    if "quoted scalar" in context and "end of stream" in problem:
        quote = text[exc.context_mark.index] if exc.context_mark is not None else "'"
        return ManifestError(
            f"this quoted value is never closed: its {quote} runs to the end of the file",
            location=_at(display, text, exc.context_mark),
            hint=f"Close it with {quote} on this line (a {quote} inside the value is written "
            + ("''" if quote == "'" else '\\"')
            + ").",
        )
    if "flow mapping" in context or "flow sequence" in context:
        found = _unquoted_expression(exc, text)
        if found is not None:
            expr, fix = found
            collection = context.split()[-1]
            brackets = "{...}" if collection == "mapping" else "[...]"
            return ManifestError(
                f"unquoted Conductor expression {expr} inside a {brackets} flow {collection}: "
                "YAML reads its braces as structure",
                location=location,
                hint=f"Quote it: {fix} (or write the {collection} in block style).",
            )
    opened = exc.context_mark
    if problem.startswith("did not find expected ','") and opened is not None:
        bracket, close = text[opened.index], problem[-2]
        if mark is None or mark.index >= len(text.rstrip()):  # the file ends inside it
            return ManifestError(
                f"the {bracket} opened here is never closed",
                location=_at(display, text, opened),
                hint=f"Close it with {close}.",
            )
        return ManifestError(
            f"the {bracket} opened at line {opened.line + 1} column {opened.column + 1} is not "
            f"closed before this: YAML expected ',' or '{close}' here",
            location=location,
            hint=f"Close it with {close}, or separate its items with commas.",
        )
    if problem == "did not find expected key" and "block mapping" in context and opened:
        return ManifestError(
            "this line's indentation matches no key of the mapping that starts at line "
            f"{opened.line + 1}",
            location=location,
            hint="Indent it as far as the keys it belongs with (YAML nests by indentation).",
        )
    problem = problem or "invalid YAML"
    detail = f"invalid YAML: {problem}"
    if exc.context and exc.context_mark is not None:
        detail += f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
    hint = (
        "Keep one of the two."
        if problem.startswith("duplicate key")
        else "Check the indentation and quoting here."
    )
    return ManifestError(detail, location=location, hint=hint)


def _unquoted_expression(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, str] | None:
    """Find an unquoted ``${...}`` between the flow collection's start and the error."""
    start = exc.context_mark.index if exc.context_mark is not None else 0
    end = exc.problem_mark.index if exc.problem_mark is not None else len(text)
    segment = text[start : end + 1]
    for match in _UNQUOTED_EXPR.finditer(segment):
        before = segment[: match.start("expr")].rstrip()
        if before.endswith(("'", '"')):
            continue
        expr = match.group("expr")
        if not expr.endswith("}"):
            rest = text[start + match.end("expr") :]
            expr += rest[: rest.find("}") + 1] if "}" in rest else ""
        key = (match.group("key") or "").strip()
        return expr, f'{key} "{expr}"' if key else f'"{expr}"'
    return None


# -- writing ----------------------------------------------------------------------------------------


class _Dumper(yaml.CSafeDumper):
    """Block style; multi-line strings (scripts, jq) as literal blocks; Conductor expressions and
    placeholders double-quoted, so the YAML stays valid and reads as what it is."""


def _str(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    style: str | None = None
    if "\n" in value and not value.endswith((" ", "\t")):
        style = "|"
    elif "${" in value or "((" in value:
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_documents(documents: Sequence[Any], *, explicit_start: bool = True) -> str:
    """YAML documents, deterministic: same data, same bytes."""
    text: str = yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        explicit_start=explicit_start,
        width=100,
    )
    return text
