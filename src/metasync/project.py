"""Facade: a metasync project on disk, its environments, and each environment's desired state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from metasync.errors import ConfigError, Location, Problem, ValidationFailed
from metasync.manifests.environment import (
    ProjectSettings,
    environment_names,
    load_environment,
    load_settings,
)
from metasync.manifests.loader import MANIFESTS_DIR, load_manifests
from metasync.manifests.variables import Lookup, manifest_lookup, unresolved_lookup
from metasync.model.checks import check_resources
from metasync.model.resource import Resource


@dataclass(frozen=True)
class Desired:
    """One environment's desired state, with every problem found on the way (warnings included)."""

    environment: str | None
    resources: list[Resource]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


class Project:
    def __init__(self, root: Path):
        self.root = root.resolve()
        if not (self.root / MANIFESTS_DIR).is_dir():
            raise ConfigError(
                f"not a metasync project: there is no {MANIFESTS_DIR}/ folder",
                location=Location(str(root)),
                hint="Run metasync from the project's root, or pass --project DIR.",
            )

    @cached_property
    def settings(self) -> ProjectSettings:
        return load_settings(self.root)

    @property
    def environments(self) -> list[str]:
        return environment_names(self.root)

    def desired(self, env: str | None) -> Desired:
        """Load and check the manifests as ``env`` sees them (``None``: no variables at all)."""
        lookup: Lookup
        if env is None:
            lookup = unresolved_lookup
        else:
            environment = load_environment(self.root, env, connect=False)
            config = environment.config
            lookup = manifest_lookup(env, config.vars, config.secrets, environment.file)
        loaded = load_manifests(self.root, lookup)
        problems = loaded.problems + check_resources(loaded.resources)
        return Desired(env, loaded.resources, problems)

    def render(self, env: str) -> Desired:
        """The desired state of ``env``; raises with every problem when any is an error."""
        desired = self.desired(env)
        if desired.errors:
            raise ValidationFailed(desired.problems)
        return desired

    def validate(self, envs: Sequence[str] | None = None) -> list[Desired]:
        """Check the project for each environment (all of them when none is named)."""
        names = list(envs) if envs else self.environments
        if not names:
            return [self.desired(None)]
        return [self.desired(name) for name in names]
