"""What a kind's offline checks are given: a reporter that places each finding at its file, line
and key path (by the rules of the target flavour), and an index of the project's resources."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from metasync.errors import Location, Problem, Severity
from metasync.model.flavour import FLAVOUR_NAMES, Flavour
from metasync.model.paths import Locator, RawPath, display_path


class Checked(Protocol):
    """What a check reads of a resource (model/resource.py's Resource; not imported: it reads the
    registry this module is part of)."""

    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int | None: ...
    @property
    def spec(self) -> Mapping[str, Any]: ...
    @property
    def title(self) -> str: ...
    @property
    def origin(self) -> Locator | None: ...


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Reporter:
    def __init__(self, resource: Checked, problems: list[Problem], flavour: Flavour | None):
        self.resource = resource
        self.problems = problems
        self.flavour = flavour

    def __call__(
        self,
        severity: Severity,
        message: str,
        path: RawPath,
        hint: str | None = None,
        *,
        rule: str | None = None,
    ) -> None:
        display = display_path(self.resource.spec, path)
        origin = self.resource.origin
        location = (
            origin.locate(path, display) if origin else Location(self.resource.title, None, display)
        )
        self.problems.append(Problem(message, location, hint, severity, rule))

    def refused_by(
        self, only: Flavour, message: str, path: RawPath, hint: str | None = None
    ) -> None:
        """A rule only ``only`` enforces: an error there, nothing elsewhere, a warning while the
        environment's flavour is not known."""
        if self.flavour is None:
            self("warning", f"{message} ({FLAVOUR_NAMES[only]} refuses it)", path, hint,
                 rule="flavour-rule")  # fmt: skip
        elif self.flavour == only:
            self("error", f"{message}, which {FLAVOUR_NAMES[only]} refuses", path, hint)


class Index:
    """The resources of one environment's rendering, by kind and name."""

    def __init__(self, resources: Sequence[Checked]):
        self._specs: dict[str, dict[str, Mapping[str, Any]]] = {}
        self._versions: dict[str, dict[str, set[int]]] = {}
        for r in resources:
            self._specs.setdefault(r.kind, {})[r.name] = r.spec
            self._versions.setdefault(r.kind, {}).setdefault(r.name, set()).add(r.version or 1)

    def specs(self, kind: str) -> Mapping[str, Mapping[str, Any]]:
        """Name -> spec (the last version read, for a versioned kind)."""
        return self._specs.get(kind, {})

    def versions(self, kind: str) -> Mapping[str, set[int]]:
        """Name -> the versions defined."""
        return self._versions.get(kind, {})


#: a kind's offline checks of one object's spec
Check = Callable[[Mapping[str, Any], Reporter, Index], None]


def owner_email(spec: Mapping[str, Any], report: Reporter) -> None:
    """3.15 asks definitions for an ownerEmail, and refuses one that is not an address."""
    email = spec.get("ownerEmail")
    if email is None and report.flavour != "oss":  # conductor-oss does not ask for one
        report(
            "warning",
            "ownerEmail is not set: Conductor 3.15 rejects the definition unless "
            "the server runs with conductor.app.ownerEmailMandatory=false",
            ("name",),
            "Set ownerEmail, for example from a variable: ownerEmail: ((vars.owner_email)).",
            rule="missing-owner-email",
        )
    elif email is not None and not _EMAIL.match(email):
        report.refused_by(
            "3.15",
            f"ownerEmail {email!r} is not an e-mail address",
            ("ownerEmail",),
            "Use an address like team@example.com.",
        )
