"""``--select kind=WorkflowDef,name=order_*,label.team=payments`` (docs/cli.md).

Within one selector every clause must hold; with the flag repeated, any selector may hold. ``name``
and label values take shell globs. Selection applies to both sides: a live object outside the
selection is neither planned nor reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from metasync.errors import MetasyncError, Problem, did_you_mean
from metasync.model.kinds import KINDS

_KEYS = ("kind", "name", "label.<key>")


@dataclass(frozen=True, slots=True)
class Selector:
    clauses: tuple[tuple[str, str], ...]

    def matches(self, kind: str, name: str, labels: Mapping[str, str]) -> bool:
        for key, pattern in self.clauses:
            if key == "kind":
                value: str | None = kind
            elif key == "name":
                value = name
            else:
                value = labels.get(key.removeprefix("label."))
            if value is None or not fnmatchcase(value, pattern):
                return False
        return True


def parse_selectors(texts: Sequence[str]) -> tuple[Selector, ...]:
    selectors = []
    for text in texts:
        clauses = []
        for part in text.split(","):
            key, sep, value = (s.strip() for s in part.partition("="))
            if not sep or not key or not value:
                raise MetasyncError(
                    f"--select {text!r}: {part!r} is not KEY=VALUE",
                    hint="Write e.g. --select kind=WorkflowDef,name=order_*,label.team=payments.",
                )
            if key not in ("kind", "name") and not key.startswith("label."):
                raise MetasyncError(
                    f"--select {text!r}: unknown key {key!r}{did_you_mean(key, ('kind', 'name'))}",
                    hint=f"Keys: {', '.join(_KEYS)}.",
                )
            if key == "kind" and value not in KINDS:
                raise MetasyncError(
                    f"--select {text!r}: unknown kind {value!r}{did_you_mean(value, KINDS)}",
                    hint=f"Kinds: {', '.join(KINDS)}.",
                )
            clauses.append((key, value))
        selectors.append(Selector(tuple(clauses)))
    return tuple(selectors)


def selected(
    selectors: Sequence[Selector], kind: str, name: str, labels: Mapping[str, str]
) -> bool:
    return not selectors or any(s.matches(kind, name, labels) for s in selectors)


def selection_text(selectors: Sequence[Selector]) -> str:
    """``--select kind=WorkflowDef,name=a* --select name=b``, as it was given."""
    return " ".join(
        "--select " + ",".join(f"{key}={value}" for key, value in s.clauses) for s in selectors
    )


def nothing_selected(selectors: Sequence[Selector], where: str) -> Problem:
    """The selection matched no object ``where`` (e.g. "in git or on the server of dev")."""
    return Problem(
        f"{selection_text(selectors)} matches nothing {where}",
        hint="Names and labels match as shell globs, case-sensitively (name=order_* or "
        "name='*_payment'); `metasync render --env ENV` lists what git has.",
        severity="warning",
        rule="empty-selection",
    )
