"""Problems (errors and warnings) for the terminal, coloured when it is one.

Errors are always written in full. Warnings (``write_warnings``) are written once each, and by
default summed up: grouped by rule, each rule with its count and its first places by file and line,
and one line saying how to see them all and how to silence a rule. They are written as plain lines
(colour is two escape codes, not a rich render per line), and only the places shown are located:
a line number is found by composing the file's YAML again, which 26,000 warnings must not each pay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import IO, Any, Literal

from rich.text import Text

from metasync.errors import RULES, Problem
from metasync.render.console import make_console

_STYLE = {"error": "bold red", "warning": "yellow"}

WarningsMode = Literal["summary", "all", "none"]
WARNINGS_MODES: tuple[WarningsMode, ...] = ("summary", "all", "none")
#: places shown for each rule in the summary
PLACES = 3


def write_problems(stream: IO[str], problems: Iterable[Problem]) -> None:
    """Each problem in full: errors, and the warnings of a run (a lock taken over, a webhook
    that failed), which say what happened and are never silenced."""
    console = make_console(stream)
    for problem in problems:
        text = Text.assemble((f"{problem.severity}:", _STYLE[problem.severity]), " ")
        if problem.location is not None:
            text.append(f"{problem.location}: ", style="bold")
        text.append(problem.message)
        if problem.location is not None and problem.location.snippet:
            text.append(f"\n{problem.location.snippet}")
        if problem.hint:
            text.append(f"\n  {problem.hint}", style="dim")
        console.print(text)


def _place_key(problem: Problem) -> tuple[str, int, str, str]:
    """By file and line (this locates the problem: only for those that are shown)."""
    where = problem.location
    if where is None:
        return "", 0, "", problem.message
    return where.file, where.line or 0, where.path, problem.message


def first_places(problems: Sequence[Problem], count: int) -> list[Problem]:
    """The first ``count`` of ``problems`` by file and line, locating only the files needed."""
    nowhere = [p for p in problems if p.location is None]
    by_file: dict[str, list[Problem]] = {}
    for p in problems:
        if p.location is not None:
            by_file.setdefault(p.location.file, []).append(p)
    chosen = sorted(nowhere, key=_place_key)[:count]
    for file in sorted(by_file):
        if len(chosen) >= count:
            break
        chosen += sorted(by_file[file], key=_place_key)[: count - len(chosen)]
    return chosen


def by_place(problems: Iterable[Problem]) -> list[Problem]:
    """Every problem by file and line (locates them all)."""
    return sorted(problems, key=_place_key)


class _Lines:
    def __init__(self, stream: IO[str]):
        self.stream = stream
        console = make_console(stream)
        coloured = console.is_terminal and not console.no_color and console.color_system
        self.label = "\x1b[33mwarning\x1b[0m:" if coloured else "warning:"
        self.dim = ("\x1b[2m", "\x1b[0m") if coloured else ("", "")
        self.lines: list[str] = []

    def one(self, problem: Problem, indent: str = "") -> None:
        where = f"{problem.location}: " if problem.location is not None else ""
        rule = f" [{problem.rule}]" if problem.rule else ""
        self.lines.append(f"{indent}{self.label} {where}{problem.message}{rule}")
        if problem.hint:
            self.hint(problem.hint)

    def hint(self, text: str) -> None:
        start, end = self.dim
        self.lines.append(f"  {start}{text}{end}")

    def write(self) -> None:
        if self.lines:
            self.stream.write("\n".join(self.lines) + "\n")
            self.stream.flush()


def write_warnings(stream: IO[str], warnings: Iterable[Problem], mode: WarningsMode = "summary",
                   suppressed: int = 0, places: int = PLACES) -> None:  # fmt: skip
    """Each warning once: summed up by rule (``summary``), every one (``all``) or a count
    (``none``); ``suppressed`` is how many ``warnings.ignore`` silenced (counted, not shown)."""
    unique = list(dict.fromkeys(warnings))
    out = _Lines(stream)
    total = len(unique)
    silenced = f"{suppressed} suppressed by warnings.ignore" if suppressed else ""
    if mode == "none":
        if total:
            out.lines.append(f"{total} warning(s) not shown (--warnings summary or all shows them)"
                             + (f"; {silenced}" if silenced else ""))  # fmt: skip
        out.write()
        return
    if mode == "all":
        for problem in by_place(unique):
            out.one(problem)
        if silenced:
            out.lines.append(f"{total} warning(s); {silenced}")
        out.write()
        return
    groups: dict[str | None, list[Problem]] = {}
    for problem in unique:
        groups.setdefault(problem.rule, []).append(problem)
    shown = {rule: first_places(group, places) for rule, group in groups.items()}
    hidden = 0
    collapsed: list[str] = []
    for rule in sorted(groups, key=lambda r: _place_key(shown[r][0])):
        group = groups[rule]
        if len(group) <= places or rule is None:
            for problem in by_place(group) if rule is None else shown[rule]:
                out.one(problem)
            continue
        hidden += len(group) - places
        collapsed.append(rule)
        title = RULES.get(rule, rule)
        out.lines.append(f"{out.label} {len(group)} × {title} [{rule}]; the first {places}:")
        for problem in shown[rule]:
            where = f"{problem.location}: " if problem.location is not None else ""
            out.lines.append(f"  {where}{problem.message}")
        hint = shown[rule][0].hint
        if hint:
            out.hint(hint)
    if collapsed:
        out.lines.append(
            f"{total} warning(s), {hidden} not shown: `--warnings all` shows every one"
            + (f" ({silenced})" if silenced else "")
            + f". To silence a rule, add `{{rule: {collapsed[0]}, reason: ...}}` under "
            "warnings.ignore in metasync.yaml or the environment's environment.yaml."
        )
    elif silenced:
        out.lines.append(f"{total} warning(s); {silenced}")
    out.write()


def problem_document(problem: Problem) -> dict[str, Any]:
    """A problem in JSON outputs (``plan -o json``'s warnings)."""
    where = problem.location
    return {
        "rule": problem.rule,
        "severity": problem.severity,
        "message": problem.message,
        "file": where.file if where is not None else None,
        "line": where.line if where is not None else None,
        "path": (where.path or None) if where is not None else None,
        "hint": problem.hint,
    }
