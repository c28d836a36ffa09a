"""The one root of user errors, and the data they carry.

A ``MetasyncError`` is something a person can fix (bad input, a refusal, a server that said no); the
CLI maps it to exit 1 and prints it without a traceback. Anything else that escapes is a bug (exit 3).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

#: every warning's rule: a stable id (what ``warnings.ignore`` names) and what it is about
RULES: dict[str, str] = {
    # offline checks of the manifests
    "undefined-taskdef": "a SIMPLE task names a TaskDef the project does not define",
    "undefined-sub-workflow": "a SUB_WORKFLOW task names a workflow the project does not define",
    "undefined-sub-workflow-version": "a SUB_WORKFLOW task names a version not in the project",
    "undefined-failure-workflow": "failureWorkflow names a workflow the project does not define",
    "undefined-handler-workflow": "an event handler starts a workflow the project does not define",
    "undefined-schedule-workflow": "a schedule starts a workflow the project does not define",
    "unknown-field": "a field the model does not know: the server ignores it",
    "unknown-join-ref": "a JOIN waits for a task the workflow does not have",
    "expression-reference": "an expression the server does not check here names no task",
    "unchecked-in-loop": "what the server would refuse, inside a DO_WHILE it does not check",
    "task-type-case": "a task type in the wrong case runs as a worker task",
    "oss-task-type": "a conductor-oss task type runs as a worker task on Conductor 3.15",
    "flavour-rule": "what one server flavour refuses, while the environment's flavour is not known",
    "missing-owner-email": "ownerEmail is not set (Conductor 3.15 asks for one)",
    "server-managed-field": "a field the server or metasync writes: the value is ignored",
    "handler-inactive": "an event handler without active: it registers inactive",
    "schedule-no-cron": "a schedule without a cronExpression never runs",
    "cron-fields": "a cronExpression without Spring's six fields never runs",
    "schedule-name-slash": "a schedule name with '/' cannot be read or deleted",
    "test-mock-unknown-task": "a WorkflowTest mocks a task this environment's workflow lacks",
    "unused-ignore": "a warnings.ignore entry that matches no warning",
    "idle-field-ignore": "an ignore: entry that names no object in git or on the server",
    # what a server says while planning
    "empty-selection": "a --select that matches nothing in git or on the server",
    "field-unknown-to-server": "a field this server does not know: left out of the plan",
    # export
    "export-credential": "an exported value that looks like a credential",
    "export-placeholder": "an exported value that reads like a metasync placeholder",
    "export-not-everywhere": "a resource on some of the exported environments only",
    # runs: what happened on the way
    "damaged-backup": "a backup file that cannot be read was skipped",
    "lock-taken-over": "an apply lock another run left behind was taken over",
    "lock-not-released": "the apply lock could not be released",
    "history-not-recorded": "a revision's result could not be recorded",
    "ledger-not-updated": "the ledger of what the project wrote could not be updated",
    "answer-lost": "a write's answer was lost, but the read-back shows it landed",
    "notification-failed": "a webhook notification was not delivered",
    "cache-corrupt": "a damaged cache file (.metasync/cache/) was ignored and rewritten",
}


class Location:
    """Where a problem is: ``manifests/workflows/order.yaml:14 tasks[ref=charge].type``, or with a
    column (1-based) ``manifests/wf.yaml:5:2``; ``snippet`` is the source line with a caret under
    the column, shown under the message (see :func:`source_snippet`).

    The line may be found lazily (``find``): looking it up composes the file's YAML again, which
    only the places that are shown should pay for. Two locations not located yet compare by
    ``anchor`` instead (what ``find`` looks up: the document and key path), so that finding the
    duplicates among thousands of warnings locates none of them.
    """

    __slots__ = ("_anchor", "_find", "_line", "column", "file", "path", "snippet")

    def __init__(
        self,
        file: str,
        line: int | None = None,
        path: str = "",
        *,
        find: Callable[[], int | None] | None = None,
        anchor: Hashable = None,
        column: int | None = None,
        snippet: str | None = None,
    ) -> None:
        self.file = file
        self.path = path
        self.column = column
        self.snippet = snippet
        self._line = line
        self._find = find
        self._anchor = anchor if find is not None else None

    @property
    def line(self) -> int | None:
        if self._find is not None:
            self._line, self._find = self._find(), None
        return self._line

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Location):
            return NotImplemented
        if (self.file, self.path) != (other.file, other.path):
            return False
        if self._find is not None and other._find is not None:  # neither located yet
            return bool(self._anchor == other._anchor)
        return (self.line, self.column) == (other.line, other.column)

    def __hash__(self) -> int:
        return hash((self.file, self.path))  # the line may not be known yet

    def __repr__(self) -> str:
        return f"Location({self.file!r}, {self.line!r}, {self.path!r})"

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.line is not None and self.column is not None:
            place += f":{self.column}"
        return f"{place} {self.path}" if self.path else place


def source_snippet(text: str, line: int, column: int) -> str:
    """Line ``line`` of ``text`` (1-based) and a caret under ``column`` (1-based); a tab shows as →
    (one character, so the caret stays in place)."""
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    gutter = str(line)
    return (
        f"  {gutter} | {source.replace(chr(9), '→')}\n  {' ' * len(gutter)} | {' ' * (column - 1)}^"
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: what is wrong, where, and what to do next. A warning names its ``rule`` (one
    of ``RULES``): what ``warnings.ignore`` silences."""

    message: str
    location: Location | None = None
    hint: str | None = None
    severity: Severity = "error"
    rule: str | None = None

    def __post_init__(self) -> None:
        if self.rule is not None and self.rule not in RULES:
            raise ValueError(f"unknown warning rule {self.rule!r}: add it to errors.RULES")

    def format(self) -> str:
        head = f"{self.location}: {self.message}" if self.location else self.message
        text = f"{self.severity}: {head}" + (f" [{self.rule}]" if self.rule else "")
        if self.location is not None and self.location.snippet:
            text += f"\n{self.location.snippet}"
        return f"{text}\n  {self.hint}" if self.hint else text


class MetasyncError(Exception):
    """A user error: exit 1, printed without a traceback."""

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None):
        super().__init__(message)
        self.problem = Problem(message, location, hint)

    @property
    def problems(self) -> Sequence[Problem]:
        return (self.problem,)

    def __str__(self) -> str:
        return self.problem.format()


class ManifestError(MetasyncError):
    """A manifest, overlay or environment file cannot be read as written."""


class ConfigError(MetasyncError):
    """The project or an environment is set up wrongly (missing directory, unknown environment...)."""


class ValidationFailed(MetasyncError):
    """Several problems found at once; at least one is an error."""

    def __init__(self, problems: Iterable[Problem]):
        self._problems = tuple(problems)
        errors = sum(p.severity == "error" for p in self._problems)
        super().__init__(f"{errors} error(s) found")

    @property
    def problems(self) -> Sequence[Problem]:
        return self._problems

    def __str__(self) -> str:
        return "\n".join(p.format() for p in self._problems)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    options = list(choices)
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not match:
        lowered = {c.lower(): c for c in options}
        if word.lower() in lowered:
            match = [lowered[word.lower()]]
    return f"; did you mean {match[0]!r}?" if match else ""


class ServerError(MetasyncError):
    """A Conductor server refused a request or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        hint: str | None = None,
        status: int | None = None,
        details: Sequence[Problem] = (),
        ambiguous: bool = False,
    ):
        super().__init__(message, location=location, hint=hint)
        self.status = status
        self.details = tuple(details)
        #: the request may have been carried out all the same (sent, but no answer came back)
        self.ambiguous = ambiguous

    @property
    def problems(self) -> Sequence[Problem]:
        return (self.problem, *self.details)

    def __str__(self) -> str:
        return "\n".join(p.format() for p in self.problems)


_USERINFO = re.compile(r"(?<=://)([^/@\s:]*)(:[^/@\s]*)?@")


def redact_url(url: str) -> str:
    """``http://admin:pass@host`` -> ``http://admin:***@host``: a URL as it may be shown."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}:***@" if m.group(2) else "***@", url)
