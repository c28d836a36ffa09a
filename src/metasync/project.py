"""Facade: a metasync project on disk, its environments, and each environment's desired state."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from metasync.apply.history import history_name
from metasync.apply.lock import lock_name
from metasync.bulk import no_cycles
from metasync.conductor.client import ConductorClient
from metasync.conductor.normalize import Flavour
from metasync.errors import (
    ConfigError,
    Location,
    Problem,
    ValidationFailed,
    redact_url,
)
from metasync.local import LOCAL_DIR, read_local, write_local
from metasync.manifests.cache import (
    Cache,
    FileHashes,
    disabled_by_env,
    file_key,
    key_of,
    sources_from,
)
from metasync.manifests.environment import (
    ENVIRONMENTS_DIR,
    PROJECT_FILE,
    ProjectSettings,
    environment_names,
    load_environment,
    load_settings,
)
from metasync.manifests.gitref import manifests_at, open_repo, remote_identity, resolve_commit
from metasync.manifests.loader import (
    MANIFESTS_DIR,
    Loaded,
    ManifestSource,
    content_key,
    load_manifests,
    working_tree,
)
from metasync.manifests.overlays import apply_overlays, overlay_readers
from metasync.manifests.secrets import used_secrets
from metasync.manifests.suppression import Suppression, split, suppressions
from metasync.manifests.variables import Lookup, manifest_lookup, unresolved_lookup
from metasync.model.checks import check_resources
from metasync.model.flavour import flavour_of
from metasync.model.resource import Resource
from metasync.model.workflow_test import check_tests
from metasync.plan.memo import FingerprintMemo, spec_digest

#: what each environment's server said it is, by URL (the checks follow its flavour offline)
SERVERS_SEEN = f"{LOCAL_DIR}/servers.json"


@dataclass(frozen=True)
class Desired:
    """One environment's desired state, with every problem found on the way (warnings included)."""

    environment: str | None
    resources: list[Resource]
    problems: list[Problem] = field(default_factory=list)
    #: the WorkflowTest documents, as this environment sees them (`metasync test`)
    tests: list[Resource] = field(default_factory=list)
    #: the warnings warnings.ignore silenced (counted, not shown), and its entries
    suppressed: list[Problem] = field(default_factory=list)
    suppressions: tuple[Suppression, ...] = ()
    #: per resource: the secrets its spec names and its memo digest (plan/memo.py), worked out
    #: once, when the manifests are rendered, and cached with them
    facts: dict[tuple[str, str, int | None], tuple[frozenset[str], bytes | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @cached_property
    def _own(self) -> dict[tuple[str, str, int | None], Resource]:
        return {r.key: r for r in self.resources}

    def fact(self, resource: Resource) -> tuple[frozenset[str], bytes | None] | None:
        """``resource``'s facts, when it is one of these resources (not a copy made since)."""
        if self._own.get(resource.key) is not resource:
            return None
        return self.facts.get(resource.key)

    def secrets_of(self, resource: Resource) -> frozenset[str]:
        """The secrets ``resource``'s spec names."""
        facts = self.fact(resource)
        return facts[0] if facts is not None else frozenset(used_secrets(resource.spec))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def _unpinned(env: str, source: str, file: str) -> Problem:
    return Problem(
        f"{env} is promoted from {source} (promotion.from), but promotion.ref is not set: it "
        "would run the working tree, and every merge would deploy it without a promotion",
        Location(file, None, "promotion.ref"),
        f"Pin it to the commit it should run: `metasync promote {source} {env}` opens that "
        "change, or set promotion.ref to a commit (`git rev-parse HEAD`).",
    )


@dataclass(frozen=True)
class Identity:
    name: str
    source: str  # where the name comes from: "metasync.yaml" or "the git remote"


def _is_project(folder: Path) -> bool:
    return (folder / PROJECT_FILE).is_file() or (
        (folder / MANIFESTS_DIR).is_dir() and (folder / ENVIRONMENTS_DIR).is_dir()
    )


def find_project(start: Path) -> Path:
    """The project ``start`` is in, as git finds its repository: ``start`` or the nearest folder
    above it that holds metasync.yaml (or manifests/ and environments/), up to the root of the
    git repository ``start`` is in (or of the file system)."""
    start = start.resolve()
    if (start / MANIFESTS_DIR).is_dir():  # a project's root, however small
        return start
    searched = start
    for folder in (start, *start.parents):
        searched = folder
        if _is_project(folder):
            return folder
        if (folder / ".git").exists():
            break
    where = f"{start}" if searched == start else f"{start} or any folder above it up to {searched}"
    raise ConfigError(
        f"not a metasync project: no {PROJECT_FILE} (nor {MANIFESTS_DIR}/ and "
        f"{ENVIRONMENTS_DIR}/) in {where}",
        hint="Run `metasync init` to start a project here, or pass --project DIR (the folder "
        f"holding {PROJECT_FILE} and {MANIFESTS_DIR}/).",
    )


class Project:
    def __init__(self, root: Path, *, cache: bool | None = None):
        """``cache``: use .metasync/cache/ (default: unless METASYNC_NO_CACHE is set)."""
        self.root = root.resolve()
        self.cache = Cache(self.root, enabled=not disabled_by_env() if cache is None else cache)
        if not (self.root / MANIFESTS_DIR).is_dir():
            raise ConfigError(
                f"not a metasync project: there is no {MANIFESTS_DIR}/ folder",
                location=Location(str(root)),
                hint="Pass --project the folder holding metasync.yaml and manifests/, run "
                "metasync inside it, or start one with `metasync init`.",
            )

    @classmethod
    def find(cls, start: Path) -> Project:
        """The project ``start`` is in (``find_project``)."""
        return cls(find_project(start))

    @cached_property
    def settings(self) -> ProjectSettings:
        return load_settings(self.root)

    @cached_property
    def identity(self) -> Identity:
        """The project's name, which marks what it writes on servers and names its lock: from
        metasync.yaml, or from the repository's remote; never from a folder's name (two checkouts
        must agree on it)."""
        if self.settings.name:
            return Identity(self.settings.name, PROJECT_FILE)
        derived = remote_identity(self.root)
        if derived:
            return Identity(derived, "the git remote")
        raise ConfigError(
            "the project has no name: it marks what metasync writes on a server and names the "
            "apply lock, so every checkout must agree on it",
            location=Location(PROJECT_FILE),
            hint="Add `name: <project>` to metasync.yaml at the project's root (or work in a git "
            "repository with a remote: its path names the project).",
        )

    @property
    def mark(self) -> str:
        """What metasync writes into ownerApp: ``metasync/<project name>``."""
        return f"metasync/{self.identity.name}"

    @property
    def environments(self) -> list[str]:
        return environment_names(self.root)

    def desired(self, env: str | None, pin: str | None = None, worktree: bool = False,
                flavour: Flavour | None = None) -> Desired:  # fmt: skip
        """Load and check the manifests as ``env`` sees them (``None``: no variables at all).

        ``pin`` reads manifests/ at that commit instead of the environment's own promotion.ref;
        ``worktree`` reads the working tree whatever the pin. The checks follow ``flavour``, or
        the environment's (declared, or learned from its server), or neither's when not known.
        """
        lookup: Lookup
        source = None
        unpinned: list[Problem] = []
        silence = suppressions(self.settings.warnings, PROJECT_FILE)
        lookup_key = "unresolved"
        if env is None:
            lookup = unresolved_lookup
        else:
            flavour = flavour or self.flavour(env)
            environment = load_environment(self.root, env, connect=False)
            config = environment.config
            lookup = manifest_lookup(env, config.vars, config.secrets, environment.file)
            lookup_key = json.dumps(
                [environment.file, config.vars, config.secrets, pin, worktree],
                sort_keys=True,
                default=repr,
            )
            silence += suppressions(config.warnings, environment.file)
            if (pin or config.promotion.ref) and not worktree:
                source = self.manifests_at(pin or config.promotion.ref or "", environment.file)
            elif config.promotion.from_ and not worktree:
                unpinned.append(_unpinned(env, config.promotion.from_, environment.file))
        files = list(working_tree(self.root) if source is None else source)
        overlays = [] if env is None else overlay_readers(self.root, env)
        said = [(p.message, str(p.location)) for p in unpinned]
        hashes = FileHashes(self.cache)
        contents: dict[str, str | None] = {}
        key = self._desired_key(hashes, files, overlays, env, flavour, lookup_key, said,
                                repr(silence), contents=contents)  # fmt: skip
        damage = hashes.damage
        known: Loaded | None = None
        if key is not None:
            cached, damaged = self.cache.load("desired", key, sources_from([*files, *overlays]))
            if isinstance(cached, Desired):
                if damage is None:
                    return cached
                return replace(cached, problems=[*cached.problems, damage])
            damage = damage or damaged
            # an edit: the files that did not change are not loaded again (only checked again)
            pieces, damaged = self.cache.load("files", key_of("files", lookup_key),
                                              sources_from(files, gone=True))  # fmt: skip
            known = pieces if isinstance(pieces, dict) else {}
            damage = damage or damaged
        each: Loaded = {}
        with no_cycles():  # thousands of documents, no cycles among them
            loaded = load_manifests(self.root, lookup, files, known=known, contents=contents,
                                    loaded=each)  # fmt: skip
            resources, problems = loaded.resources, unpinned + loaded.problems
            if env is not None:
                overlaid = apply_overlays(self.root, env, resources, lookup)
                resources, problems = overlaid.resources, problems + overlaid.problems
            problems += check_resources(resources, flavour) + check_tests(loaded.tests, resources)
        problems, silenced = split(problems, silence)
        desired = Desired(env, resources, problems, loaded.tests, silenced, silence)
        if key is not None:
            self.cache.store("files", key_of("files", lookup_key), each)
            desired.facts.update(
                (r.key, (frozenset(used_secrets(r.spec)), spec_digest(r.kind, r.spec)))
                for r in resources
            )
            self.cache.store("desired", key, desired)
        if damage is not None:  # said once, never stored
            desired = replace(desired, problems=[*desired.problems, damage])
        return desired

    def _desired_key(self, hashes: FileHashes, files: ManifestSource, overlays: ManifestSource,
                     *context: object, contents: dict[str, str | None]) -> str | None:  # fmt: skip
        """The cache key of an environment's desired state: everything ``desired`` reads (the
        manifests' and overlays' contents, metasync.yaml, and ``context``: the environment's
        resolved settings, the flavour), or None when a file's content cannot be named (then
        nothing is cached). ``contents`` receives each file's content key."""
        if not self.cache.enabled:
            return None
        names = []
        for display, read in [*files, *overlays]:
            named = content_key(read, hashes)
            if named is None:
                return None
            contents[display] = named
            names.append(f"{display}\0{named}")
        hashes.keep()
        settings = file_key(self.root / PROJECT_FILE) or "-"
        return key_of("desired", settings, *context, *names)

    def fingerprint_memo(self, env: str, secret_values: Iterable[str]
                         ) -> tuple[FingerprintMemo, list[Problem]]:  # fmt: skip
        """The fingerprints ``env``'s last plan found (plan/memo.py), from the cache; and the
        warning to show when its file was damaged."""
        entries, damage = self.cache.load("memo", key_of("memo", env), sources_from(()))
        known = entries if isinstance(entries, dict) else None
        return FingerprintMemo(known, list(secret_values)), [damage] if damage else []

    def keep_fingerprints(self, env: str, memo: FingerprintMemo) -> None:
        """Keep what this plan used and found, for the next plan of ``env``."""
        self.cache.store("memo", key_of("memo", env), memo.entries)

    def manifests_at(self, ref: str, where: str = "") -> ManifestSource:
        """manifests/ as committed at ``ref`` (an environment's promotion pin)."""
        repo = open_repo(self.root)
        commit = resolve_commit(repo, ref, Location(where, None, "promotion.ref"))
        return manifests_at(self.root, commit)

    def render(self, env: str, pin: str | None = None, flavour: Flavour | None = None) -> Desired:
        """The desired state of ``env``; raises with every problem when any is an error."""
        desired = self.desired(env, pin, flavour=flavour)
        if desired.errors:
            raise ValidationFailed(desired.problems)
        return desired

    def validate(self, envs: Sequence[str] | None = None) -> list[Desired]:
        """Check the project for each environment (all of them when none is named)."""
        names = list(envs) if envs else self.environments
        if not names:
            return [self.desired(None)]
        return [self.desired(name) for name in names]

    # -- live servers ---------------------------------------------------------------------------

    def flavour(self, env: str) -> Flavour | None:
        """``env``'s server flavour: declared in its environment.yaml, or as its server last said
        (remembered in .metasync/servers.json for that URL); None when not known."""
        server = load_environment(self.root, env, connect=False).config.server
        if server.flavour is not None:
            return server.flavour
        seen = self._servers_seen().get(env) or {}
        version = seen.get("version")
        if seen.get("url") != redact_url(server.url) or not isinstance(version, str):
            return None
        return flavour_of(version)

    def _servers_seen(self) -> dict[str, Any]:
        return read_local(self.root, SERVERS_SEEN)

    def remember_server(self, env: str, url: str, version: str) -> None:
        """Remember the version ``env``'s server at ``url`` (redacted) said."""
        seen = self._servers_seen()
        entry = {"url": url, "version": version}
        if seen.get(env) == entry:
            return
        seen[env] = entry
        write_local(self.root, SERVERS_SEEN, json.dumps(seen, indent=2, sort_keys=True) + "\n")

    def connect(self, env: str, timeout: float | None = None) -> ConductorClient:
        """A client of ``env``'s server; ``timeout`` (seconds per request) overrides the
        environment's ``server.timeoutSeconds``."""
        environment = load_environment(self.root, env)
        server = environment.config.server
        key_id = key_secret = None
        if server.auth is not None:
            missing = [
                v for v in (server.auth.keyIdEnv, server.auth.keySecretEnv) if v not in os.environ
            ]
            if missing:
                raise ConfigError(
                    f"the {env} server needs credentials: {', '.join(missing)} not set",
                    location=Location(environment.file, None, "server.auth"),
                    hint=f"Export {' and '.join(missing)} before running metasync.",
                )
            key_id = os.environ[server.auth.keyIdEnv]
            key_secret = os.environ[server.auth.keySecretEnv]
        return ConductorClient.connect(
            server.url,
            label=f"the {env} server ({redact_url(server.url)})",
            timeout=timeout or server.timeoutSeconds,
            key_id=key_id,
            key_secret=key_secret,
        )

    # -- locks, backups, rollback ----------------------------------------------------------------

    @property
    def lock_name(self) -> str:
        return lock_name(self.identity.name)

    def history_name(self, env: str) -> str:
        """Where ``env``'s history of applies and rollbacks is kept on its server."""
        return history_name(self.identity.name, env)

    # -- notifications ----------------------------------------------------------------------------

    def webhooks(self, env: str) -> list[str]:
        """The webhooks ``env`` names (``notify:`` in its environment.yaml), resolved."""
        return list(load_environment(self.root, env).config.notify)
