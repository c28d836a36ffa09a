#!/usr/bin/env python3
"""Benchmark: faster YAML parsers against libyaml on the generated manifests (issue 17, point 2).

The candidates are not dependencies of metasync: install them into a throwaway virtualenv outside
the repository, with PyYAML, and run this script with that interpreter:

    python3 -m venv /tmp/yamlbench
    /tmp/yamlbench/bin/pip install pyyaml rapidyaml yaml-rs ryaml pyyaml-rs fastyaml-rs libfyaml
    /tmp/yamlbench/bin/python benchmarks/bench_yaml_parsers.py            # N = 2,000
    /tmp/yamlbench/bin/python benchmarks/bench_yaml_parsers.py 500

A candidate that is not installed is skipped (and said so). metasync's own reader
(src/metasync/manifests/yamlio.py, libyaml's CSafeLoader, compose + construct, with its duplicate-key
check) is imported from this source tree. For each parser, three questions:

* speed: CPU seconds to turn the N workflow files (already in memory) into Python objects, best of
  five runs interleaved across the parsers (CPU time: the machine is shared);
* the same objects: equal to metasync's on every benchmark file and on a set of edge cases where
  YAML 1.1 (PyYAML/libyaml) and YAML 1.2 parsers differ (yes/on, 0777, 1:30, merge keys, tags...);
* errors: what it says, and at which line, for a tab, a duplicate key, an unclosed quote, an
  unclosed bracket and a bad indentation, beside metasync's message and line.
"""

from __future__ import annotations

import importlib
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import bench_load
import yaml

from metasync.errors import ManifestError
from metasync.manifests import yamlio

Parse = Callable[[str], list[Any]]
RUNS = 5


def optional(name: str) -> Any:
    """A candidate's module, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


ryml = optional("ryml")
yaml_rs = optional("yaml_rs")
ryaml = optional("ryaml")
pyyaml_rs = optional("pyyaml_rs")
fast_yaml = optional("fast_yaml")
libfyaml = optional("libfyaml")


def metasync_parse(text: str) -> list[Any]:
    return [doc.data for doc in yamlio.parse_documents(text, "file.yaml")]


def csafe_parse(text: str) -> list[Any]:
    """libyaml without metasync's duplicate-key check and str interning (bench_load's floor)."""
    loader = yaml.CSafeLoader(text)
    try:
        docs = []
        while loader.check_node():
            data = loader.construct_document(loader.get_node())
            if data is not None:
                docs.append(data)
        return docs
    finally:
        loader.dispose()


# -- rapidyaml: a tree from C++, the Python objects built from it in Python -------------------------

_RESOLVERS = yamlio._Loader.yaml_implicit_resolvers  # YAML 1.1 as metasync: no timestamps
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_PLAIN: dict[str, Any] = {}


def _plain(text: str) -> Any:
    """A plain scalar's value as libyaml + SafeConstructor give it (resolved once per spelling)."""
    try:
        return _PLAIN[text]
    except KeyError:
        pass
    value: Any = text
    for tag, regexp in _RESOLVERS.get(text[:1], []) + _RESOLVERS.get(None, []):
        if regexp.match(text):
            value = _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, text))
            break
    if text == "":
        value = None
    _PLAIN[text] = value
    return value


class Duplicate(Exception):
    """A key repeated in one mapping (rapidyaml keeps both): metasync's reader says where."""


def _ryml_build(tree: Any, node: int) -> Any:
    if tree.is_map(node):
        mapping: dict[Any, Any] = {}
        for child in ryml.children(tree, node):
            raw = tree.key(child)
            key = bytes(raw).decode() if raw is not None else None
            if key is not None and not tree.is_key_quoted(child):
                key = _plain(key)
            if key in mapping:
                raise Duplicate(key)
            mapping[key] = _ryml_build(tree, child)
        return mapping
    if tree.is_seq(node):
        return [_ryml_build(tree, child) for child in ryml.children(tree, node)]
    if tree.val_is_null(node):
        return None
    text = bytes(tree.val(node)).decode()
    if tree.has_val_tag(node):  # the explicit tags a manifest may use: !!str, !!int, !!float...
        tag = bytes(tree.val_tag(node)).decode().replace("!!", "tag:yaml.org,2002:")
        return _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, text))
    if tree.is_val_quoted(node) or tree.is_val_literal(node) or tree.is_val_folded(node):
        return text
    return _plain(text)


def ryml_tree(text: str) -> list[Any]:
    tree = ryml.parse_in_arena(text.encode())
    return [tree]


def ryml_parse(text: str) -> list[Any]:
    tree = ryml.parse_in_arena(text.encode())
    if "*" in text:
        tree.resolve()
    root = tree.root_id()
    nodes = list(ryml.children(tree, root)) if tree.is_stream(root) else [root]
    docs = [_ryml_build(tree, node) for node in nodes]
    return [doc for doc in docs if doc is not None]


# -- the others: bindings that return Python objects directly ----------------------------------------


def yaml_rs_parse(text: str) -> list[Any]:
    data = yaml_rs.loads(text, parse_datetime=False)
    docs = data if text.lstrip().startswith("---") and isinstance(data, list) else [data]
    return [d for d in docs if d is not None]


def ryaml_parse(text: str) -> list[Any]:
    return [d for d in ryaml.loads_all(text) if d is not None]


def pyyaml_rs_parse(text: str) -> list[Any]:
    return [d for d in pyyaml_rs.safe_load_all(text) if d is not None]


def fast_yaml_parse(text: str) -> list[Any]:
    return [d for d in fast_yaml.safe_load_all(text) if d is not None]


def libfyaml_parse(text: str) -> list[Any]:
    return [d.to_python() for d in libfyaml.loads_all(text) if not d.is_null()]


#: name, module to import, pip package, parse
CANDIDATES: list[tuple[str, str, str, Parse]] = [
    ("metasync (libyaml CSafeLoader)", "yaml", "pyyaml", metasync_parse),
    ("libyaml CSafeLoader, plain", "yaml", "pyyaml", csafe_parse),
    ("rapidyaml, tree only", "ryml", "rapidyaml", ryml_tree),
    ("rapidyaml + Python build", "ryml", "rapidyaml", ryml_parse),
    ("yaml-rs (Rust)", "yaml_rs", "yaml-rs", yaml_rs_parse),
    ("ryaml (Rust)", "ryaml", "ryaml", ryaml_parse),
    ("pyyaml-rs (Rust)", "pyyaml_rs", "pyyaml-rs", pyyaml_rs_parse),
    ("fastyaml-rs (Rust)", "fast_yaml", "fastyaml-rs", fast_yaml_parse),
    ("libfyaml (C)", "libfyaml", "libfyaml", libfyaml_parse),
]

EDGE_CASES = {
    "booleans 1.1": "a: yes\nb: on\nc: off\nd: True\ne: NO\n",
    "integers 1.1": "a: 0777\nb: 0o17\nc: 0x1F\nd: 1_000\ne: 1:30\n",
    "floats": "a: .inf\nb: -.Inf\nd: 1e3\ne: 1.5e+3\nf: 1.0\n",  # nan != nan: left out
    "nulls": "a: ~\nb: null\nc:\nd: Null\n",
    "dates stay strings": "a: 2001-12-14\nb: 2001-12-14t21:59:43.10-05:00\n",
    "merge key": "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n",
    "anchors": "a: &x [1, 2]\nb: *x\n",
    "tags": "a: !!str 123\nb: !!int '7'\n",
    "block scalars": "a: |\n  line1\n  line2\nb: >-\n  folded\n  text\n",
    "documents": "---\na: 1\n---\n---\nb: 2\n",
    "quoting": "a: 'it''s'\nb: \"tab\\there\"\nc: \"${x.output}\"\nd: ${workflow.input.x}\n",
    "flow": "a: {b: [1, {c: d}], e: f}\n",
    "unicode": 'a: h\u00e9llo\nb: "\\u00e9"\n',
    "keys": "1: one\nfalse: f\n2.5: x\n",
}

ERROR_CASES = {
    "tab": "apiVersion: metasync/v1\nspec:\n\tname: x\n",
    "duplicate key": "a: 1\nb: 2\na: 3\n",
    "unclosed quote": 'a: 1\nb: "abc\nc: 2\n',
    "unclosed bracket": "a: 1\nb: [1, 2\nc: 3\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
}


def available(module: str) -> bool:
    return module == "yaml" or globals()[module] is not None


def same(parse: Parse, text: str, expected: list[Any]) -> bool:
    try:
        return parse(text) == expected
    except Exception:
        return False


def error_of(parse: Parse, text: str) -> tuple[str, int | None]:
    """What the parser says of bad text, and the line it names (1-based), if any."""
    try:
        parse(text)
    except ManifestError as exc:
        location = exc.problem.location
        return exc.problem.message[:70], location.line if location else None
    except Exception as exc:
        message = str(exc) or getattr(exc, "msg", "") or type(exc).__name__
        line = None
        parse_data = getattr(exc, "errdata_parse", None)  # rapidyaml: a location, 1-based
        if parse_data is not None:
            line = parse_data.ymlloc.line
        found = re.search(r"line (\d+)", message)
        if line is None and found:
            line = int(found.group(1))
        problem_mark = getattr(exc, "problem_mark", None)
        if problem_mark is not None:
            line = problem_mark.line + 1
        return " ".join(message.split())[:70], line
    return "(accepted)", None


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench_load.make_project(root, n)
        texts = [p.read_text() for p in sorted((root / "manifests").rglob("*.yaml"))]
    size = sum(len(t) for t in texts) / 1e6
    reference = [metasync_parse(t) for t in texts]
    edge_reference = {name: metasync_parse(text) for name, text in EDGE_CASES.items()}
    print(f"{n:,} workflows + task defs, {len(texts):,} files, {size:.1f} MB of YAML\n")
    usable = [(name, parse) for name, module, _, parse in CANDIDATES if available(module)]
    for name, module, package, _ in CANDIDATES:
        if not available(module):
            print(f"skipped {name}: not installed (pip install {package})")
    checks: dict[str, tuple[str, str]] = {}
    differences = []
    for name, parse in usable:  # also a warm-up
        if parse is ryml_tree:
            checks[name] = ("(a tree)", "-")
            continue
        pairs = zip(texts, reference, strict=True)
        identical = "yes" if all(same(parse, t, r) for t, r in pairs) else "NO"
        wrong = [k for k, text in EDGE_CASES.items() if not same(parse, text, edge_reference[k])]
        checks[name] = (identical, f"{len(EDGE_CASES) - len(wrong)}/{len(EDGE_CASES)}")
        if wrong:
            differences.append(f"  {name}: {', '.join(wrong)}")
    seconds = dict.fromkeys((name for name, _ in usable), float("inf"))
    for _ in range(RUNS):  # interleaved: a noisy moment hits every parser alike
        for name, parse in usable:
            start = time.process_time()
            for text in texts:
                parse(text)
            seconds[name] = min(seconds[name], time.process_time() - start)
    base = seconds[usable[0][0]]
    print(f"CPU seconds to Python objects, best of {RUNS} interleaved runs\n")
    print(
        f"{'parser':<31} {'seconds':>8} {'vs metasync':>11} {'same objects':>12} {'edge cases':>10}"
    )
    for name, _ in usable:
        identical, edges = checks[name]
        print(
            f"{name:<31} {seconds[name]:>8.2f} {base / seconds[name]:>10.1f}x {identical:>12} {edges:>10}"
        )
    if differences:
        print("\nedge cases whose objects differ from metasync's:", *differences, sep="\n")
    print("\nerrors: message (line); metasync first")
    for case, text in ERROR_CASES.items():
        print(f"  {case}:")
        for name, parse in usable:
            if parse in (csafe_parse, ryml_tree):
                continue
            message, line = error_of(parse, text)
            print(f"    {name:<31} line {line if line is not None else '-':<3} {message}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
