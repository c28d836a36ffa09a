"""Live objects -> manifest documents (``metasync export``). Pure: no I/O.

Each object becomes the smallest manifest that plans as a no-op against the server it came from:
server-managed fields dropped, fields that equal the server's defaults omitted (a workflow keeps
its version: it is part of its identity), keys in the model's order. The same server gives the same
bytes: nothing depends on time or on the order the server lists objects in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metasync.conductor.live import Key, LiveState
from metasync.conductor.normalize import Flavour, normalize, ordered
from metasync.errors import Location, Problem
from metasync.manifests.variables import PLACEHOLDER
from metasync.manifests.yamlio import dump_documents
from metasync.model.kinds import KINDS
from metasync.plan.select import Selector, selected

API_VERSION = "metasync/v1"


@dataclass
class Export:
    #: manifest files, path relative to the project -> content
    files: dict[str, str] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)


#: ``scheme://user:PASSWORD@``: a password written in a URL (not a ``((...))`` placeholder)
_URL_PASSWORD = re.compile(r"(?<=://)([^/@\s:'\"]*):(?!\(\()([^/@\s'\"]+)@")


def passwords_as_variables(text: str, env: str, file: str) -> tuple[str, list[Problem]]:
    """``environment.yaml`` text with each password written in a URL (``http://admin:pw@host``)
    replaced by ``((env.METASYNC_<ENV>_PASSWORD[_N]))``, and a warning per variable to set: an
    export never copies a credential, not even the one the project's own file holds."""
    stem = f"METASYNC_{re.sub(r'[^A-Za-z0-9]+', '_', env).upper()}_PASSWORD"
    names: dict[str, str] = {}
    warnings: list[Problem] = []

    def variable(match: re.Match[str]) -> str:
        password = match.group(2)
        if password not in names:
            names[password] = stem if not names else f"{stem}_{len(names) + 1}"
            line = text.count("\n", 0, match.start()) + 1
            warnings.append(Problem(
                f"a password written in a URL is exported as ((env.{names[password]}))",
                Location(file, line),
                f"Set {names[password]} to that password where the exported project runs "
                "(or give the server credentials with server.auth).",
                "warning",
                "export-credential",
            ))  # fmt: skip
        return f"{match.group(1)}:((env.{names[password]}))@"

    return _URL_PASSWORD.sub(variable, text), warnings


def minimal(kind: str, spec: Mapping[str, Any], flavour: Flavour) -> dict[str, Any]:
    """What a manifest must say for the server to hold ``spec``: defaults and server fields out."""
    small = normalize(kind, spec, flavour, fill=False)
    small.pop("name", None)  # metadata.name says it
    for live_state in KINDS[kind].live_state:  # the server's, not configuration
        small.pop(live_state, None)
    if KINDS[kind].versioned:
        small["version"] = int(spec.get("version", 1))
    return ordered(kind, small)


def document(kind: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": dict(spec)}


def file_stem(name: str) -> str:
    """A resource name as a file name (what a file system would choke on replaced)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "unnamed"


def overlay_file(key: Key) -> str:
    """An environment's overlay file for one resource: ``<name>[.v<version>].yaml``."""
    return f"{file_stem(key[1])}{f'.v{key[2]}' if key[2] is not None else ''}.yaml"


def file_names(keys: Sequence[Key]) -> dict[tuple[str, str], str]:
    """(kind, name) -> ``manifests/<folder>/<name>.yaml``; names made safe, clashes numbered."""
    taken: set[str] = set()
    names: dict[tuple[str, str], str] = {}
    for kind, name, _ in sorted(keys, key=_order):
        if (kind, name) in names:
            continue
        stem = file_stem(name)
        path, n = f"manifests/{KINDS[kind].folder}/{stem}.yaml", 1
        while path.lower() in taken:  # case-insensitive file systems too
            n += 1
            path = f"manifests/{KINDS[kind].folder}/{stem}-{n}.yaml"
        taken.add(path.lower())
        names[kind, name] = path
    return names


def export(live: LiveState, selectors: Sequence[Selector] = (), *,
           specs: Mapping[Key, Mapping[str, Any]] | None = None) -> Export:  # fmt: skip
    """One file per resource (a workflow's versions together). ``specs`` replaces the live specs
    (already minimal), for callers that factor several servers into one base."""
    keys = [k for k in live.objects if selected(selectors, k[0], k[1], {})]
    chosen = specs if specs is not None else {
        k: minimal(k[0], live.objects[k], live.flavour) for k in keys
    }  # fmt: skip
    result = Export()
    paths = file_names(list(chosen))
    by_file: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(chosen, key=_order):
        kind, name, _ = key
        spec = chosen[key]
        result.warnings += _placeholder_warnings(key, spec, paths[kind, name])
        by_file.setdefault(paths[kind, name], []).append(document(kind, name, spec))
    for path, documents in sorted(by_file.items()):
        result.files[path] = dump_documents(documents)
    return result


def _order(key: Key) -> tuple[int, str, int]:
    return (KINDS[key[0]].order, key[1], key[2] or 0)


#: a key whose value is a credential, and values that are one whatever their key
_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[-_]?key|authorization|credentials?)$", re.I
)
_SECRET_VALUE = re.compile(
    r"\bBearer\s+[A-Za-z0-9._~+/=-]{16,}|\bBasic\s+[A-Za-z0-9+/=]{12,}|\bAKIA[0-9A-Z]{16}\b"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abpr]-[A-Za-z0-9-]{10,}"
)


def _looks_secret(field: str, value: str) -> bool:
    """A value written in clear that reads like a credential (not a placeholder, not ${...})."""
    if not value.strip() or PLACEHOLDER.search(value) or "${" in value:
        return False
    if _SECRET_VALUE.search(value):
        return True
    return bool(_SECRET_KEY.search(field)) and len(value) >= 8 and " " not in value.strip()


def _placeholder_warnings(key: Key, spec: Any, path: str, at: str = "") -> list[Problem]:
    """A live string that reads like ``((vars.x))`` would be substituted when the manifest loads;
    one that reads like a credential is written in clear (a secret no environment declares)."""
    if isinstance(spec, str):
        title = f"{key[0]} {key[1]}" + (f" v{key[2]}" if key[2] is not None else "")
        field = at.rsplit(".", 1)[-1]
        if _looks_secret(field, spec):
            return [Problem(
                f"{title}: the value at {at} looks like a credential, and is written in clear",
                Location(path, None, at),
                "Declare it in the environment's secrets: (a variable name), put "
                "((secrets.NAME)) in its place, and export again.", "warning", "export-credential",
            )]  # fmt: skip
        if PLACEHOLDER.search(spec):
            return [Problem(
                f"{title}: {spec!r} reads like a metasync placeholder; loading the manifest would "
                "substitute it", Location(path, None, at),
                "Check that value by hand in the exported manifest.", "warning", "export-placeholder",
            )]  # fmt: skip
        return []
    if isinstance(spec, Mapping):
        return [w for k, v in spec.items()
                for w in _placeholder_warnings(key, v, path, f"{at}.{k}" if at else str(k))]  # fmt: skip
    if isinstance(spec, list):
        return [
            w for i, v in enumerate(spec) for w in _placeholder_warnings(key, v, path, f"{at}[{i}]")
        ]
    return []
