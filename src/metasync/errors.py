"""The one root of user errors, and the data they carry.

A ``MetasyncError`` is something a person can fix (bad input, a refusal, a server that said no); the
CLI maps it to exit 1 and prints it without a traceback. Anything else that escapes is a bug (exit 3).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: ``manifests/workflows/order.yaml:14 tasks[ref=charge].type``, or with a
    column (1-based) ``manifests/wf.yaml:5:2``; ``snippet`` is the source line with a caret under
    the column, shown under the message (see :func:`source_snippet`)."""

    file: str
    line: int | None = None
    path: str = ""
    column: int | None = None
    snippet: str | None = None

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
    """One finding: what is wrong, where, and what to do next."""

    message: str
    location: Location | None = None
    hint: str | None = None
    severity: Severity = "error"

    def format(self) -> str:
        head = f"{self.location}: {self.message}" if self.location else self.message
        text = f"{self.severity}: {head}"
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
