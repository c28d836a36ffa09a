"""``warnings.ignore`` (metasync.yaml for the project, environment.yaml for one environment):
which warnings are silenced. A silenced warning is counted, never shown; errors cannot be."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from metasync.errors import Location, Problem
from metasync.manifests.environment import WarningSettings


@dataclass(frozen=True, slots=True)
class Suppression:
    rule: str
    files: tuple[str, ...]
    reason: str
    #: the entry: ``metasync.yaml warnings.ignore[0]``
    where: Location

    def matches(self, problem: Problem) -> bool:
        if problem.severity != "warning" or problem.rule != self.rule:
            return False
        if not self.files:
            return True
        file = problem.location.file if problem.location is not None else ""
        return any(fnmatchcase(file, glob) for glob in self.files)


def suppressions(settings: WarningSettings, file: str) -> tuple[Suppression, ...]:
    return tuple(
        Suppression(
            i.rule,
            tuple(i.files),
            i.reason or "",
            settings.place(n) or Location(file, None, f"warnings.ignore[{n}]"),
        )
        for n, i in enumerate(settings.ignore)
    )


def split(
    problems: Iterable[Problem], rules: Sequence[Suppression]
) -> tuple[list[Problem], list[Problem]]:
    """``problems`` as (kept, suppressed)."""
    kept: list[Problem] = []
    silenced: list[Problem] = []
    if not rules:
        return list(problems), silenced
    by_rule: dict[str, list[Suppression]] = {}
    for s in rules:
        by_rule.setdefault(s.rule, []).append(s)
    for problem in problems:
        candidates = by_rule.get(problem.rule or "", ())
        (silenced if any(s.matches(problem) for s in candidates) else kept).append(problem)
    return kept, silenced


def unused(rules: Iterable[Suppression], silenced: Iterable[Problem]) -> list[Problem]:
    """A hint for each entry that silenced nothing (a warning fixed since, or a typo'd glob)."""
    silenced = list(silenced)
    return [
        Problem(
            f"warnings.ignore of {s.rule}"
            + (f" in {', '.join(s.files)}" if s.files else "")
            + " matches no warning",
            s.where,
            "Remove the entry (the warning it silenced is gone), or fix its files glob.",
            "warning",
            "unused-ignore",
        )
        for s in dict.fromkeys(rules)
        if not any(s.matches(p) for p in silenced)
    ]
