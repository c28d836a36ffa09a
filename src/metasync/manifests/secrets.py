"""Secret values: read from the process environment only when a server is contacted, never shown.

``((secrets.NAME))`` stays a placeholder in everything metasync renders. Plan and apply resolve it
from the process environment variable that environment.yaml maps NAME to; what they show is masked
again: every occurrence of a secret's value becomes its placeholder, and a value the server holds
where git now has a secret (an old, rotated value, say) is shown as ``(sensitive)``.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from metasync.errors import Location, MetasyncError, Problem, ValidationFailed

_SECRET = re.compile(r"\(\(\s*secrets\.([A-Za-z_][A-Za-z0-9_.-]*)\s*\)\)")
SENSITIVE = "(sensitive)"
#: every secret this process has read (name -> value), so last-resort output (a crash log) can
#: hide them without being handed a Secrets
_IN_PLAY: dict[str, str] = {}


def scrub(text: str) -> str:
    """``text`` with every secret value this process has read replaced by its placeholder, in
    every form a message or a traceback may hold it: raw, Python repr, JSON-escaped,
    URL-encoded (either way) and base64 (as a whole, or inside a Basic auth header)."""
    forms = sorted(
        ((form, name) for name, value in _IN_PLAY.items() for form in _encodings(value)),
        key=lambda item: -len(item[0]),
    )
    for form, name in forms:
        text = text.replace(form, f"((secrets.{name}))")
    return text


def _encodings(value: str) -> set[str]:
    if not value:
        return set()
    forms = {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
    }
    for prefix in ("", ":"):  # alone, or the password part of "user:password"
        raw = (prefix + value).encode()
        encoded = base64.b64encode(raw).decode()
        forms.add(encoded.rstrip("="))
        forms.add(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    # a base64 of the value inside a longer string starts at a 3-byte boundary: its core, without
    # the last (partial) block, is found whatever came before at each of the three alignments
    for shift in range(3):
        raw = b"\0" * shift + value.encode()
        core = base64.b64encode(raw).decode()[(shift * 4 + 2) // 3 + (1 if shift else 0) :]
        if len(core) > 8:
            forms.add(core[: len(core) - 4])
    return {f for f in forms if len(f) >= min(4, len(value))}


@dataclass(frozen=True)
class Secrets:
    """Resolved secret values of one environment (name -> value)."""

    values: Mapping[str, str]

    @classmethod
    def from_environment(cls, mapping: Mapping[str, str], used: set[str], env_file: str) -> Secrets:
        """Read the variables of the secrets in ``used``; a missing one is an error naming it."""
        problems = []
        values = {}
        for name in sorted(used):
            variable = mapping.get(name)
            if variable is None:
                continue  # reported by the manifests' own check (undefined secret)
            value = os.environ.get(variable)
            if not value:
                problems.append(Problem(
                    f"secret {name}: process environment variable {variable} is not set",
                    Location(env_file, None, f"secrets.{name}"),
                    f"Export {variable} before running plan or apply.",
                ))  # fmt: skip
            else:
                values[name] = value
        if problems:
            raise ValidationFailed(problems)
        _IN_PLAY.update(values.items())
        return cls(values)

    @classmethod
    def available(cls, mapping: Mapping[str, str]) -> Secrets:
        """The secrets whose variables are set (to mask what a server holds; none required)."""
        values = {name: os.environ[var] for name, var in mapping.items() if os.environ.get(var)}
        _IN_PLAY.update(values.items())
        return cls(values)

    def resolve(self, value: Any) -> Any:
        """``value`` with every placeholder replaced by its secret."""
        if not self.values:  # nothing to put in (an undefined secret was reported on loading)
            return value
        if isinstance(value, str):
            if "((" not in value:
                return value
            return _SECRET.sub(lambda m: self._value(m.group(1)), value)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _value(self, name: str) -> str:
        if name not in self.values:
            raise MetasyncError(f"secret {name} has no value", hint="Declare it under secrets:.")
        return self.values[name]

    def mask(self, value: Any) -> Any:
        """``value`` with every secret value replaced by its placeholder."""
        if not self.values:
            return value
        if isinstance(value, str):
            for name, secret in self.values.items():
                value = value.replace(secret, f"((secrets.{name}))")
            return value
        if isinstance(value, Mapping):  # a dict, or a server's object kept as its text
            return {k: self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value


def used_secrets(value: Any) -> set[str]:
    if isinstance(value, (dict, list)):  # most specs have none: one look at their JSON tells
        try:
            if "((" not in json.dumps(value, ensure_ascii=False):
                return set()
        except (TypeError, ValueError):
            pass
        return _used(value)
    return _used(value)


def _used(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_SECRET.findall(value)) if "((" in value else set()
    if isinstance(value, dict):
        return {n for v in value.values() for n in _used(v)}
    if isinstance(value, list):
        return {n for v in value for n in _used(v)}
    return set()


def hide_where_secret(value: Any, template: Any) -> Any:
    """``value`` (what a server holds) with ``template``'s placeholder wherever ``template`` (the
    manifest, unresolved) has a secret: a rotated value the server still holds is not known as a
    secret, but it sits where git keeps one. Lists of tasks pair up by taskReferenceName, other
    lists by position."""
    if isinstance(template, str):
        return template if "((" in template and _SECRET.search(template) else value
    if isinstance(template, Mapping) and isinstance(value, Mapping):
        return {k: hide_where_secret(v, template[k]) if k in template else v
                for k, v in value.items()}  # fmt: skip
    if isinstance(template, list) and isinstance(value, list):
        refs = {_ref(t): t for t in template if _ref(t) is not None}
        if refs:
            return [hide_where_secret(v, refs[_ref(v)]) if _ref(v) in refs else v for v in value]
        return [hide_where_secret(v, t) for v, t in zip(value, template, strict=False)] + value[
            len(template) :
        ]
    return value


def _ref(task: Any) -> str | None:
    if isinstance(task, Mapping) and isinstance(task.get("taskReferenceName"), str):
        return str(task["taskReferenceName"])
    return None
