"""A desired resource: one manifest document after variables, with where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from metasync.model.kinds import KINDS
from metasync.model.paths import Locator


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str
    name: str
    version: int | None  # workflows only
    spec: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    origin: Locator | None = field(default=None, compare=False, repr=False)

    def __reduce__(self) -> tuple[Any, ...]:
        # the dataclass default restores slots field by field in Python: 4x slower to load from
        # the cache (manifests/cache.py) than calling the constructor
        return (Resource, (self.kind, self.name, self.version, self.spec, self.labels, self.origin))

    @property
    def key(self) -> tuple[str, str, int | None]:
        """Identity: (kind, name) for task defs and event handlers, plus version for workflows."""
        return (self.kind, self.name, self.version)

    @property
    def title(self) -> str:
        return f"{self.kind} {self.name}" + (
            f" v{self.version}" if self.version is not None else ""
        )

    def sort_key(self) -> tuple[int, str, int]:
        return (KINDS[self.kind].order, self.name, self.version or 0)
