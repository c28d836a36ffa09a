"""Facade: a metasync project on disk, its environments, and each environment's desired state."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from metasync.adopt.adopt import edit_manifest, overlay_document, replace_document
from metasync.adopt.adopt import load_all as yaml_load_all
from metasync.adopt.changes import Unsaid
from metasync.adopt.changes import edits as adoption_edits
from metasync.adopt.export import export, minimal, overlay_file, passwords_as_variables
from metasync.adopt.factor import Layout, factor, with_vars
from metasync.apply.backup import Backup
from metasync.apply.backup import find as find_backup
from metasync.apply.backup import load as load_backup
from metasync.apply.backup import newest as newest_backup
from metasync.apply.backup import save as save_backup
from metasync.apply.executor import execute
from metasync.apply.lease import Lease, held
from metasync.apply.lock import Holder, lock_name
from metasync.apply.lock import unlock as clear_lock
from metasync.apply.steps import Step, steps_for
from metasync.conductor.client import ConductorClient
from metasync.conductor.live import LiveState, ledger_name, ledger_spec, read_live
from metasync.conductor.normalize import Flavour
from metasync.errors import (
    ConfigError,
    Location,
    MetasyncError,
    Problem,
    ServerError,
    ValidationFailed,
    redact_url,
)
from metasync.local import LOCAL_DIR, read_local, write_local
from metasync.manifests.environment import (
    ENVIRONMENT_FILE,
    ENVIRONMENTS_DIR,
    PROJECT_FILE,
    Policy,
    ProjectSettings,
    environment_names,
    load_environment,
    load_settings,
)
from metasync.manifests.gitref import (
    checkout_at,
    commit_file_on_branch,
    commit_files_on_branch,
    head_commit,
    manifests_at,
    open_repo,
    push_branch,
    resolve_commit,
    set_pin,
)
from metasync.manifests.loader import MANIFESTS_DIR, ManifestSource, load_manifests
from metasync.manifests.overlays import apply_overlays, overlay_targets
from metasync.manifests.secrets import Secrets, hide_where_secret, used_secrets
from metasync.manifests.variables import Lookup, manifest_lookup, unresolved_lookup
from metasync.manifests.yamlio import DocumentLocator, dump_documents
from metasync.model.checks import check_resources
from metasync.model.fingerprint import canonical_json, fingerprint
from metasync.model.flavour import flavour_of
from metasync.model.paths import display_path
from metasync.model.resource import Resource
from metasync.plan.drift import EnvironmentDrift, classify
from metasync.plan.model import Cell, Change, Outcome, Plan, StatusMatrix
from metasync.plan.planner import build_plan
from metasync.plan.prune import hold_back, prune_changes, with_running
from metasync.plan.saved import SAVED_KIND, Refusal, SavedPlan, reconcile
from metasync.plan.select import Selector, selected
from metasync.render.plan_json import plan_document
from metasync.render.values import paths_summary, summary_line

#: what each environment's server said it is, by URL (the checks follow its flavour offline)
SERVERS_SEEN = f"{LOCAL_DIR}/servers.json"


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
    def mark(self) -> str:
        """What metasync writes into ownerApp: ``metasync/<project name>``."""
        return f"metasync/{self.settings.name or self.root.name}"

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
        if env is None:
            lookup = unresolved_lookup
        else:
            flavour = flavour or self.flavour(env)
            environment = load_environment(self.root, env, connect=False)
            config = environment.config
            lookup = manifest_lookup(env, config.vars, config.secrets, environment.file)
            if (pin or config.promotion.ref) and not worktree:
                source = self.manifests_at(pin or config.promotion.ref or "", environment.file)
        loaded = load_manifests(self.root, lookup, source)
        resources, problems = loaded.resources, loaded.problems
        if env is not None:
            overlaid = apply_overlays(self.root, env, resources, lookup)
            resources, problems = overlaid.resources, problems + overlaid.problems
        return Desired(env, resources, problems + check_resources(resources, flavour))

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

    def _remember_server(self, env: str, live: LiveState) -> None:
        seen = self._servers_seen()
        entry = {"url": live.server, "version": live.version}
        if seen.get(env) == entry:
            return
        seen[env] = entry
        write_local(self.root, SERVERS_SEEN, json.dumps(seen, indent=2, sort_keys=True) + "\n")

    def connect(self, env: str) -> ConductorClient:
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
            timeout=server.timeoutSeconds,
            key_id=key_id,
            key_secret=key_secret,
        )

    def plan(self, env: str, selectors: Sequence[Selector] = (), pin: str | None = None) -> Planned:
        """Render ``env``, read its server in bulk, plan, and let the server check what would change."""
        desired = self.render(env, pin)
        environment = load_environment(self.root, env)
        used = {
            name
            for r in desired.resources
            if selected(selectors, r.kind, r.name, r.labels)
            for name in used_secrets(r.spec)
        }
        secrets = Secrets.from_environment(environment.config.secrets, used, environment.file)
        with self.connect(env) as client:
            live = read_live(client)
            # a server that did not say its version (a proxy, another vendor) teaches nothing
            if environment.config.server.flavour is None and live.version is not None:
                assumed = self.flavour(env)
                self._remember_server(env, live)
                if assumed != live.flavour:  # checked for another flavour: again
                    desired = self.render(env, pin, flavour=live.flavour)
            plan = build_plan(env, desired.resources, live, selectors, secrets=secrets,
                              mark=self.mark, policy=environment.config.policy)  # fmt: skip
            plan = _running(plan, client)
            problems, unchecked = _server_checks(plan, desired.resources, client, secrets)
        if problems:
            raise ValidationFailed(problems)
        return Planned(hold_back(plan, unchecked), desired, live, secrets)

    def apply(self, planned: Planned, on_step: Callable[[Step], None] | None = None, *,
              force: bool = False, restore: bool = False) -> Applied:  # fmt: skip
        """Write the plan's changes in order, then read back: every applied object must be a noop
        (a delete: gone).

        A plan with refusals (prune guards) writes nothing. Blocked changes (protected, running
        executions, still referenced) are not carried out without ``force``; they are reported
        not landed, with why. The read-back also settles the outcomes left unknown (a write whose
        answer was lost): the object now matches git (landed) or does not (not landed).
        """
        plan = planned.plan
        if plan.refusals:
            raise ValidationFailed(plan.refusals)
        env = plan.environment
        held = [
            Outcome(c, "not landed", (Problem(
                f"kept: {c.blocked}", hint=f"Pass --force to {c.action} it all the same.",
            ),))
            for c in plan.pending
            if c.blocked is not None and not force
        ]  # fmt: skip
        steps = steps_for(plan, force)
        backup = None
        if steps:
            backup = save_backup(
                self.backups_dir(env), env, plan.server,
                [c for step in steps for c in step.changes], mask=planned.secrets.mask,
                templates={r.key: r.spec for r in planned.desired.resources},
                commit=_head_or_none(self.root),
            )  # fmt: skip
        with self.connect(env) as client:
            mark = None if restore else self.mark  # a rollback writes the images as they were
            outcomes = [
                Outcome(
                    o.change, o.status, tuple(_mask_problem(p, planned.secrets) for p in o.problems)
                )
                for o in execute(steps, client, on_step, mark)
            ]
            ledger = self._record_handlers(client, planned.live, outcomes)
            try:
                live = read_live(client)
            except ServerError as exc:
                problem = _mask_problem(exc.problem, planned.secrets)
                return Applied((*outcomes, *held), (), problem, backup, ledger)
        # what was sent (new versions at their new number), secrets resolved: masked again below
        resources = [
            Resource(o.change.kind, o.change.name, o.change.version, o.change.desired)
            for o in outcomes
            if o.status != "not landed" and o.change.desired is not None
        ]
        after = {
            c.key: c for c in build_plan(env, resources, live, secrets=planned.secrets).changes
        }
        for o in outcomes:  # deletes: landed when gone
            if o.change.action == "delete":
                gone = o.change.key not in live.objects
                after[o.change.key] = replace(o.change, action="noop" if gone else "delete")
        settled = tuple(_settle(o, after.get(o.change.key)) for o in outcomes)
        drifted = tuple(
            after[o.change.key]
            for o in settled
            if o.status == "landed" and after[o.change.key].action != "noop"
        )
        return Applied((*settled, *held), drifted, backup=backup, ledger_failed=ledger)

    def _record_handlers(self, client: ConductorClient, live: LiveState,
                         outcomes: Sequence[Outcome]) -> Problem | None:  # fmt: skip
        """Keep the ledger of the event handlers this project wrote (what prune may delete)."""
        before = live.owned_handlers(self.mark)
        after = dict(before)
        for o in outcomes:
            if o.change.kind != "EventHandler" or o.status == "not landed":
                continue
            if o.change.action == "delete":
                after.pop(o.change.name, None)
            else:
                after[o.change.name] = o.change.desired_fingerprint
        if after == before:
            return None
        try:
            client.update_workflows([ledger_spec(self.mark, after)])
        except ServerError as exc:
            return Problem(
                f"the ledger of event handlers ({ledger_name(self.mark)}) was not updated: "
                f"{exc.problem.message}",
                hint="Apply again: until then prune does not know these handlers are metasync's.",
                severity="warning",
            )
        return None

    # -- locks, backups, rollback ----------------------------------------------------------------

    @property
    def lock_name(self) -> str:
        return lock_name(self.settings.name or self.root.name)

    def locked(self, env: str, command: str) -> AbstractContextManager[Lease]:
        """Hold ``env``'s apply lock for a block (apply/lease.py: heartbeat, release, take-over)."""
        minutes = load_environment(self.root, env).config.policy.lockTimeoutMinutes
        return held(lambda: self.connect(env), self.root, env=env, name=self.lock_name,
                    command=command, minutes=minutes)  # fmt: skip

    def unlock(self, env: str) -> list[Holder]:
        """Clear ``env``'s lock (its holder died); what was removed."""
        with self.connect(env) as client:
            return clear_lock(client, self.lock_name)

    def backups_dir(self, env: str) -> Path:
        """Where ``env``'s before-images go: inside the project (never under manifests/ or
        environments/, whose files git must see), or an absolute path outside it."""
        environment = load_environment(self.root, env, connect=False)
        given = environment.config.backups.dir
        folder = (self.root / given).resolve()
        where = Location(environment.file, None, "backups.dir")
        inside = folder == self.root or self.root in folder.parents
        if not Path(given).is_absolute() and not inside:
            raise ConfigError(
                f"backups.dir {given!r} leads out of the project ({folder})", location=where,
                hint="Keep it inside the project (the default is .metasync/backups), or give an "
                "absolute path to say a folder outside it on purpose.",
            )  # fmt: skip
        for kept in (MANIFESTS_DIR, ENVIRONMENTS_DIR):
            if folder == self.root / kept or (self.root / kept) in folder.parents:
                raise ConfigError(
                    f"backups.dir {given!r} is inside {kept}/: its .gitignore would hide new "
                    f"{kept} files from git", location=where,
                    hint="Use a folder of its own, such as .metasync/backups (the default).",
                )  # fmt: skip
        if folder == self.root:
            raise ConfigError(
                f"backups.dir {given!r} is the project itself: its .gitignore would hide "
                "everything from git", location=where,
                hint="Use a folder of its own, such as .metasync/backups (the default).",
            )  # fmt: skip
        return folder

    def rollback_plan(self, env: str, name: str | None = None) -> tuple[Planned, Backup]:
        """Restoring a backup's before-images, as a plan: updates back, creates deleted."""
        environment = load_environment(self.root, env)
        skipped: list[Problem] = []
        if name is None:
            backup, skipped = newest_backup(self.backups_dir(env), env)
        else:
            backup = load_backup(find_backup(self.backups_dir(env), env, name))
        if backup.environment != env:
            raise ConfigError(
                f"this backup is of {backup.environment}, not {env}",
                location=Location(str(backup.path)),
                hint=f"Run `metasync rollback --env {backup.environment} {backup.path}`.",
            )
        images = [
            Resource(kind, name_, version, spec)
            for (kind, name_, version), spec in backup.objects.items()
            if spec is not None
        ]
        used = {secret for r in images for secret in used_secrets(r.spec)}
        secrets = Secrets.from_environment(environment.config.secrets, used, environment.file)
        with self.connect(env) as client:
            live = read_live(client)
            if live.server != backup.server:
                raise ConfigError(
                    f"the backup was taken on {backup.server}, but {env} now points at "
                    f"{live.server}",
                    location=Location(str(backup.path)),
                    hint="Roll back on the server the backup came from.",
                )
            plan = build_plan(env, images, live, secrets=secrets)
            created = [
                k for k, spec in backup.objects.items() if spec is None and k in live.objects
            ]
            deletes = prune_changes(created, live, images, Policy())
            deletes = [
                replace(c, reason=f"created by the apply of {backup.created}") for c in deletes
            ]
            plan = replace(plan, changes=(*plan.changes, *deletes), unmanaged=())
            plan = _running(plan, client)
        return Planned(plan, Desired(env, images, skipped), live, secrets), backup

    # -- saved plans ----------------------------------------------------------------------------

    def save_plan(self, planned: Planned, path: Path) -> None:
        """The plan as reviewed (no secret values) with its commit and server, for `apply PLAN`."""
        document = {
            "kind": SAVED_KIND,
            **plan_document(planned.plan),
            "commit": head_commit(self.root),
        }
        try:
            path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot write the plan: {exc.strerror}", location=Location(str(path))
            ) from None

    def apply_saved(self, path: Path, on_step: Callable[[Step], None] | None = None, *,
                    force: bool = False) -> SavedApply:  # fmt: skip
        """Apply what a saved plan reviewed, refusing by name every object whose baseline moved."""
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read the saved plan: {exc}", location=Location(str(path)),
                hint="Pass the file written by `metasync plan --out FILE`.",
            ) from None  # fmt: skip
        saved = SavedPlan.from_document(document, str(path))
        with self.locked(saved.environment, "apply PLAN") as lease:
            result = self._apply_saved(saved, path, on_step, force)
        return replace(result, lease=lease)

    def _apply_saved(self, saved: SavedPlan, path: Path, on_step: Callable[[Step], None] | None,
                     force: bool) -> SavedApply:  # fmt: skip
        fresh = self.plan(saved.environment)
        if fresh.plan.server != saved.server:
            raise ConfigError(
                f"the plan was made against {saved.server}, but {saved.environment} now points at "
                f"{fresh.plan.server}",
                location=Location(str(path)),
                hint="Plan again against the current server.",
            )
        keep, refused = reconcile(saved, fresh.plan)
        subset = Planned(
            replace(fresh.plan, changes=keep), fresh.desired, fresh.live, fresh.secrets
        )
        applied = self.apply(subset, on_step, force=force) if keep else Applied((), ())
        return SavedApply(applied, refused, saved)

    # -- promotion ------------------------------------------------------------------------------

    def promote(self, source: str, target: str, *, branch: str | None = None,
                push: str | None = None) -> Promotion:  # fmt: skip
        """Pin ``target`` to the commit ``source`` runs, on a new branch; the checkout is untouched."""
        repo = open_repo(self.root)
        origin = load_environment(self.root, source, connect=False)
        destination = load_environment(self.root, target, connect=False)
        if origin.config.promotion.ref:
            where = Location(origin.file, None, "promotion.ref")
            commit = resolve_commit(repo, origin.config.promotion.ref, where)
        else:
            if repo.is_dirty(untracked_files=True, path=str(self.root / MANIFESTS_DIR)):
                raise ConfigError(
                    f"{source} follows the working tree and manifests/ has uncommitted changes, so "
                    f"no commit holds what {source} runs",
                    location=Location(f"{MANIFESTS_DIR}/"),
                    hint="Commit (or stash) the changes under manifests/, then promote.",
                )
            commit = repo.head.commit
        short = commit.hexsha[:7]
        summary = self._promotion_summary(target, commit.hexsha)
        base = repo.head.commit
        repo_root = Path(repo.working_tree_dir or self.root).resolve()
        env_path = (self.root / destination.file).relative_to(repo_root).as_posix()
        try:
            current = (base.tree / env_path).data_stream.read().decode()
        except KeyError:
            raise ConfigError(
                f"{destination.file} is not committed", location=Location(destination.file),
                hint="Commit the environment first.",
            ) from None  # fmt: skip
        name = branch or f"promote/{target}-{short}"
        message = f"Promote {source} to {target}: {target} runs {short}\n\n" + "\n".join(summary)
        new = commit_file_on_branch(repo, base, env_path, set_pin(current, commit.hexsha),
                                    branch=name, message=message)  # fmt: skip
        if push:
            push_branch(repo, push, name)
        return Promotion(source, target, name, new.hexsha, commit.hexsha, tuple(summary))

    def _promotion_summary(self, target: str, commit: str) -> list[str]:
        """What changes in ``target``: its plan against the live server, or a manifest diff."""
        try:
            plan = self.plan(target, pin=commit).plan
        except ServerError as exc:
            lines = [
                f"{target}'s server could not be read ({exc.problem.message}); manifest changes:"
            ]
            before = {r.key: r for r in self.render(target).resources}
            after = {r.key: r for r in self.render(target, pin=commit).resources}
            for key in sorted(set(before) | set(after), key=lambda k: (k[0], k[1], k[2] or 0)):
                title = (after.get(key) or before[key]).title
                if key not in before:
                    lines.append(f"  + {title}")
                elif key not in after:
                    lines.append(f"  - {title}")
                elif canonical_json(before[key].spec) != canonical_json(after[key].spec):
                    lines.append(f"  ~ {title}")
            return lines if len(lines) > 1 else [*lines, "  (none)"]
        counts = plan.summary()
        lines = [f"Plan for {target} ({plan.server}): {summary_line(counts)}."]
        for change in plan.pending:
            mark = {"create": "+", "update": "~", "delete": "-"}[change.action]
            detail = f": {paths_summary(change.fields)}" if change.action == "update" else ""
            lines.append(f"  {mark} {change.title}{detail}")
        return lines

    # -- adopting live edits -----------------------------------------------------------------------

    def adopt(self, envs: Sequence[str], *, branch: str | None = None,
              selectors: Sequence[Selector] = ()) -> Adoption | None:  # fmt: skip
        """Rewrite git so it says what each server holds for the objects edited there (drift
        ``live-edited``), on a new branch; the checkout is untouched. None: nothing to adopt."""
        repo = open_repo(self.root)
        for folder in (MANIFESTS_DIR, ENVIRONMENTS_DIR):
            if repo.is_dirty(untracked_files=True, path=str(self.root / folder)):
                raise ConfigError(
                    f"{folder}/ has uncommitted changes: the adoption branch starts from HEAD",
                    location=Location(f"{folder}/"),
                    hint="Commit (or stash) them, then adopt.",
                )
        repo_root = Path(repo.working_tree_dir or self.root).resolve()
        files: dict[str, str] = {}  # relative to the project
        lines: list[str] = []
        for env in envs:
            lines += self._adopt_env(env, files, selectors)
        if not lines:
            return None
        head = repo.head.commit
        name = branch or f"adopt/{'-'.join(envs)}-{head.hexsha[:7]}"
        prefix = self.root.relative_to(repo_root).as_posix()
        message = f"Adopt live edits on {', '.join(envs)}\n\n" + "\n".join(lines)
        new = commit_files_on_branch(
            repo, head,
            {(f"{prefix}/{path}" if prefix != "." else path): text for path, text in files.items()},
            branch=name, message=message,
        )  # fmt: skip
        return Adoption(name, new.hexsha, tuple(lines))

    def _adopt_env(self, env: str, files: dict[str, str],
                   selectors: Sequence[Selector]) -> list[str]:  # fmt: skip
        planned = self.plan(env, selectors)
        edited = [d for d in classify(planned.plan, planned.live, self.mark)
                  if d.type == "live-edited"]  # fmt: skip
        if not edited:
            return []
        environment = load_environment(self.root, env, connect=False)
        config = environment.config
        lookup = manifest_lookup(env, config.vars, config.secrets, environment.file)
        pin = config.promotion.ref
        pinned = bool(pin)
        source = self.manifests_at(pin, environment.file) if pin else None
        bases = {r.key: r for r in load_manifests(self.root, lookup, source).resources}
        targets = overlay_targets(self.root, env)
        flavour = planned.live.flavour
        lines = []
        for item in edited:
            key = (item.kind, item.name, item.version)
            base = bases[key]
            live = hide_where_secret(dict(planned.live.objects[key]), base.spec)
            where = None
            if not pinned and not _overlaid(targets, key):
                where = self._adopt_in_manifest(base, live, flavour, files)
            if where is None:
                versions = sum(k[0] == base.kind and k[1] == base.name for k in bases)
                where = self._adopt_in_overlay(env, base, live, flavour=flavour, targets=targets,
                                               files=files, versions=versions)  # fmt: skip
            lines.append(f"- {env}: {item.title}: {paths_summary(item.fields)} -> {where}")
        return lines

    def _adopt_in_manifest(self, base: Resource, live: Mapping[str, Any], flavour: Flavour,
                           files: dict[str, str]) -> str | None:  # fmt: skip
        """Edit the manifest in place; None when it cannot say the change (the overlay will)."""
        origin = base.origin
        if not isinstance(origin, DocumentLocator):
            return None
        try:
            changes = adoption_edits(base.kind, base.spec, live, flavour)
            # the edits must turn the manifest into the server's object: try them on a copy
            trial = edit_manifest(dump_documents([{"spec": dict(base.spec)}]), 0, changes)
            tried = yaml_load_all(trial)[0]["spec"]
            if canonical_json(minimal(base.kind, tried, flavour)) != canonical_json(
                minimal(base.kind, live, flavour)
            ):
                return None
            path = origin.file
            text = files.get(path) or (self.root / path).read_text()
            files[path] = edit_manifest(text, origin.index, changes)
        except Unsaid:
            return None
        return path

    def _adopt_in_overlay(self, env: str, base: Resource, live: Mapping[str, Any], *,
                          flavour: Flavour, targets: Mapping[Any, tuple[str, int]],
                          files: dict[str, str], versions: int) -> str:  # fmt: skip
        document = overlay_document(base.key, base.spec, live, flavour)
        at = targets.get(base.key)
        every = (base.kind, base.name, None)
        if at is None and every in targets and versions == 1:
            at = targets[every]  # the overlay of every version: there is only this one
            if document is not None:
                document["metadata"].pop("version", None)
        elif at is None and base.version is not None and every in targets:
            where = targets[(base.kind, base.name, None)][0]
            raise ConfigError(
                f"cannot adopt the live edit of {base.title} into {where}: that overlay changes "
                "every version of the workflow",
                location=Location(where),
                hint="Give the overlay metadata.version, then adopt again.",
            )
        if at is None:
            path = f"{ENVIRONMENTS_DIR}/{env}/overlays/{overlay_file(base.key)}"
            current = files.get(path) or (
                (self.root / path).read_text() if (self.root / path).is_file() else None
            )
            files[path] = replace_document(current, None, document)
            return path
        path, index = at
        text = files.get(path) or (self.root / path).read_text()
        files[path] = replace_document(text, index, document)
        return path

    # -- export -----------------------------------------------------------------------------------

    def export(self, envs: Sequence[str], out: Path, selectors: Sequence[Selector] = (),
               *, as_vars: bool = False) -> Exported:  # fmt: skip
        """Write what the servers of ``envs`` hold as a project in ``out``: manifests/ (one file
        per resource), and with several environments, what they share there and what differs in
        each environment's overlays (and vars, with ``as_vars``)."""
        lives = {}
        # where this project's manifests keep a secret, the server's value is one (perhaps rotated
        # since, or its variable unset here): exported as the manifest's placeholder
        for env in envs:
            templates = {r.key: r.spec for r in self.desired(env).resources}
            with self.connect(env) as client:
                live = read_live(client)
            # a secret value the server holds goes into git as its placeholder, never as itself
            secrets = Secrets.available(load_environment(self.root, env).config.secrets)
            lives[env] = replace(live, objects={
                k: secrets.mask(hide_where_secret(dict(v), templates.get(k, {})))
                for k, v in live.objects.items()
            })  # fmt: skip
        if len(envs) == 1:
            (env,) = envs
            done = export(lives[env], selectors)
            layout = Layout(done.files, {}, {}, done.warnings)
        else:
            layout = factor(lives, selectors, as_vars=as_vars)
        written, warnings = self._write_export(out, envs, layout)
        return Exported(tuple(envs), out, written, (*layout.warnings, *warnings))

    def _write_export(self, out: Path, envs: Sequence[str], layout: Layout,
                      ) -> tuple[list[str], list[Problem]]:  # fmt: skip
        """Write ``layout`` and each environment's files into ``out``; the files written, and a
        warning for each password in a URL written as a variable instead."""
        files = dict(layout.files)
        warnings: list[Problem] = []
        for env in envs:
            source = self.root / ENVIRONMENTS_DIR / env / ENVIRONMENT_FILE
            target = f"{ENVIRONMENTS_DIR}/{env}/{ENVIRONMENT_FILE}"
            text = (out / target).read_text() if (out / target).is_file() else source.read_text()
            if layout.vars.get(env):
                text = with_vars(text, layout.vars[env])
            text, hidden = passwords_as_variables(text, env, target)
            warnings += hidden
            if not (out / target).is_file() or text != (out / target).read_text():
                files[target] = text
            for name, content in layout.overlays.get(env, {}).items():
                files[f"{ENVIRONMENTS_DIR}/{env}/overlays/{name}"] = content
        if not (out / PROJECT_FILE).is_file() and (self.root / PROJECT_FILE).is_file():
            files[PROJECT_FILE] = (self.root / PROJECT_FILE).read_text()
        try:
            for path, content in sorted(files.items()):
                dest = out / path
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.is_file() or dest.read_text() != content:
                    dest.write_text(content)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the export: {exc.strerror}", location=Location(str(out)),
                hint="Pick a folder you can write to with --out.",
            ) from None  # fmt: skip
        return sorted(files), warnings

    # -- what a change touches -------------------------------------------------------------------

    def changed(self, base: str) -> list[str]:
        """The environments whose desired state (or server) differs between ``base`` and the
        working tree: what a pull request must plan, what a merge must apply."""
        now = {env: self._fingerprint_of(self, env) for env in self.environments}
        with checkout_at(self.root, base) as old_root:
            old = Project(old_root) if (old_root / MANIFESTS_DIR).is_dir() else None
            before = (
                {env: self._fingerprint_of(old, env) for env in old.environments} if old else {}
            )
        return [env for env in sorted(now) if before.get(env) != now[env]]

    @staticmethod
    def _fingerprint_of(project: Project, env: str) -> str:
        """One fingerprint of what ``env`` would run: its resources and its server."""
        try:
            desired = project.render(env)
            server = load_environment(project.root, env, connect=False).config.server.url
        except MetasyncError as exc:
            return f"invalid: {exc}"  # an environment that does not render has changed too
        return fingerprint([server, sorted(
            ((r.kind, r.name, r.version or 0), canonical_json(r.spec)) for r in desired.resources
        )])  # fmt: skip

    # -- notifications ----------------------------------------------------------------------------

    def webhooks(self, env: str) -> list[str]:
        """The webhooks ``env`` names (``notify:`` in its environment.yaml), resolved."""
        return list(load_environment(self.root, env).config.notify)

    # -- drift ------------------------------------------------------------------------------------

    def drift(self, envs: Sequence[str] = (),
              selectors: Sequence[Selector] = ()) -> list[EnvironmentDrift]:  # fmt: skip
        """How each environment's server differs from git, and which side moved; environments are
        read concurrently. An environment that cannot be checked carries its error."""
        names = list(envs) or self.environments
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
            return list(pool.map(lambda env: self._drift_of(env, selectors), names))

    def _drift_of(self, env: str, selectors: Sequence[Selector]) -> EnvironmentDrift:
        try:
            planned = self.plan(env, selectors)
        except MetasyncError as exc:
            try:
                server = redact_url(load_environment(self.root, env).config.server.url)
            except MetasyncError:
                server = "?"
            return EnvironmentDrift(env, server, error=exc.problems[0])
        plan = planned.plan
        return EnvironmentDrift(env, plan.server, classify(plan, planned.live, self.mark))

    # -- status -----------------------------------------------------------------------------------

    def status(self, envs: Sequence[str] = ()) -> StatusMatrix:
        """Each resource in each environment: in sync, drifted, missing, or waiting for promotion."""
        names = list(envs) or self.environments
        cells: dict[tuple[str, str, int | None], dict[str, Cell]] = {}
        servers: dict[str, str] = {}
        for env in names:
            upstream = self._upstream(env)
            try:
                planned = self.plan(env)
                desired = planned.desired
                servers[env] = planned.plan.server
                states = {(c.kind, c.name, c.version): c for c in planned.plan.changes}
            except ServerError as exc:
                desired = self.render(env)
                servers[env] = f"unreachable: {exc.problem.message}"
                states = {}
            for resource in desired.resources:
                change = states.get(resource.key)
                state = {"noop": "in-sync", "update": "drifted", "create": "missing"}.get(
                    change.action if change else "", "unknown"
                )
                pending = upstream is not None and (
                    resource.key not in upstream
                    or canonical_json(upstream[resource.key]) != canonical_json(resource.spec)
                )
                fingerprint = change.desired_fingerprint if change else None
                cells.setdefault(resource.key, {})[env] = Cell(state, fingerprint, pending)
            for key in upstream or {}:
                if key not in {r.key for r in desired.resources}:
                    cells.setdefault(key, {})[env] = Cell("absent", None, True)
        rows = sorted(cells.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or 0))
        return StatusMatrix(tuple(names), servers, tuple(rows))

    def _upstream(self, env: str) -> dict[tuple[str, str, int | None], object] | None:
        """``env``'s resources as they would be after promoting from its promotion.from."""
        environment = load_environment(self.root, env, connect=False)
        source = environment.config.promotion.from_
        if not source:
            return None
        origin = load_environment(self.root, source, connect=False)
        pin = origin.config.promotion.ref
        desired = self.render(env, pin=pin) if pin else self.desired(env, worktree=True)
        return {r.key: r.spec for r in desired.resources}


@dataclass(frozen=True)
class Adoption:
    branch: str
    commit: str
    lines: tuple[str, ...]  # what was adopted, and where


def _overlaid(targets: Mapping[Any, Any], key: tuple[str, str, int | None]) -> bool:
    return key in targets or (key[0], key[1], None) in targets


@dataclass(frozen=True)
class Exported:
    environments: tuple[str, ...]
    out: Path
    files: list[str]  # relative to ``out``
    warnings: tuple[Problem, ...]


@dataclass(frozen=True)
class SavedApply:
    applied: Applied
    refused: tuple[Refusal, ...]
    saved: SavedPlan
    lease: Lease | None = None

    @property
    def ok(self) -> bool:
        return self.applied.ok and not self.refused


@dataclass(frozen=True)
class Promotion:
    source: str
    target: str
    branch: str
    commit: str  # the new commit on ``branch``
    pinned: str  # the commit ``target`` now runs
    summary: tuple[str, ...]


@dataclass(frozen=True)
class Planned:
    plan: Plan
    desired: Desired
    live: LiveState
    secrets: Secrets  # values in memory only, for the writes; never rendered


@dataclass(frozen=True)
class Applied:
    outcomes: tuple[Outcome, ...]
    #: objects written that still do not plan as noop on read-back
    read_back: tuple[Change, ...]
    #: why the read-back could not run (the outcomes are then as the writes reported them)
    read_back_failed: Problem | None = None
    #: the before-images saved before the first write (None: nothing was written)
    backup: Path | None = None
    #: the event-handler ledger could not be written
    ledger_failed: Problem | None = None

    @property
    def ok(self) -> bool:
        return all(o.status == "landed" for o in self.outcomes) and not self.read_back


def _settle(outcome: Outcome, after: Change | None) -> Outcome:
    """An unknown outcome becomes landed or not landed by what the server now holds."""
    if outcome.status != "unknown" or after is None:
        return outcome
    if after.action == "noop":
        note = Problem("the answer was lost, but the read-back shows it landed", severity="warning")
        return Outcome(outcome.change, "landed", (note,))
    return Outcome(outcome.change, "not landed", outcome.problems)


_INDEXED = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def _head_or_none(root: Path) -> str | None:
    try:
        return head_commit(root)
    except MetasyncError:
        return None


def _running(plan: Plan, client: ConductorClient) -> Plan:
    """The plan with the running executions of each workflow version it deletes or updates in
    place (a delete blocked, an update noted). A count that fails (the server kept failing for
    that one name) blocks that name's deletes only: the rest of the plan goes on."""
    touched: dict[str, set[int]] = {}
    for change in plan.pending:
        if change.kind == "WorkflowDef" and change.action in ("delete", "update"):
            touched.setdefault(change.name, set()).add(change.version or 1)

    def count(item: tuple[str, set[int]]) -> dict[int, list[str]] | ServerError:
        try:
            return client.running_executions(*item)
        except ServerError as exc:
            return exc

    found: dict[tuple[str, str, int | None], list[str]] = {}
    failed: dict[tuple[str, str, int | None], str] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:  # one request per name: let them overlap
        names = sorted(touched.items())
        for (name, versions), answer in zip(names, pool.map(count, names), strict=True):
            if isinstance(answer, ServerError):
                for version in versions:
                    failed[("WorkflowDef", name, version)] = (
                        f"its running executions could not be counted ({answer.problem.message}): "
                        "not deleted this run"
                    )
                continue
            for version, ids in answer.items():
                if ids:
                    found[("WorkflowDef", name, version)] = ids
    plan = with_running(plan, found)
    return hold_back(plan, failed, actions=("delete",))


def _mask_problem(problem: Problem, secrets: Secrets) -> Problem:
    return Problem(secrets.mask(problem.message), problem.location, problem.hint, problem.severity)


def _server_checks(
    plan: Plan, resources: Sequence[Resource], client: ConductorClient, secrets: Secrets
) -> tuple[list[Problem], dict[tuple[str, str, int | None], str]]:
    """Ask the server to validate each workflow that would be written (nothing is stored): what
    it refuses, and why each workflow it could not check (it kept failing) is held back."""
    # by name too: under policy new-version a change carries the version it will be written as
    by_name = {(r.kind, r.name): r for r in resources}
    by_key = {r.key: r for r in resources}
    changes = [c for c in plan.pending if c.kind == "WorkflowDef" and c.desired is not None]

    def check(change: Change) -> ServerError | None:
        try:
            client.validate_workflow(dict(change.desired or {}))
        except ServerError as exc:
            return exc
        return None

    problems: list[Problem] = []
    unchecked: dict[tuple[str, str, int | None], str] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:  # independent requests: let them overlap
        for change, refused in zip(changes, pool.map(check, changes), strict=True):
            if refused is None:
                continue
            # 400: the server's rules; 500: a definition it cannot even read (3.15 answers so for
            # an expression where it wants an inline sub-workflow definition). Anything else (it
            # kept failing): this workflow waits for the next run, the others go on
            if refused.status not in (400, 500) or refused.ambiguous:
                message = secrets.mask(refused.problem.message)
                unchecked[change.key] = (
                    f"the server could not check it ({message}): not applied this run"
                )
                continue
            resource = by_key.get(change.key) or by_name[(change.kind, change.name)]
            status = refused.status or 400
            found = [_place(detail, resource, status) for detail in refused.details] or [
                _place(_unreadable(refused.problem.message), resource, status)
            ]
            problems += [_mask_problem(p, secrets) for p in found]
    return problems, unchecked


_CHAIN = re.compile(r"reference chain: (.*)\)", re.S)
_LINK = re.compile(r'\["([^"]+)"\]|\[(\d+)\]')


def _unreadable(message: str) -> Problem:
    """A request the server could not read (a 500 "JSON parse error: ... (through reference chain:
    WorkflowDef["tasks"]->java.util.ArrayList[1]->...)") as ``tasks[1].x: JSON parse error: ...``,
    the path taken from Jackson's reference chain."""
    text = message.partition(": ")[2]  # after "POST /api/... -> 500"
    chain = _CHAIN.search(text)
    path = ""
    if chain:
        for name, index in _LINK.findall(chain.group(1)):
            path += f"[{index}]" if index else f".{name}"
    short = text.split(" at [Source", 1)[0].strip()
    return Problem(f"x{path}: {short}")


def _place(detail: Problem, resource: Resource, status: int) -> Problem:
    """``workflowDef.tasks[0]: message`` -> the manifest's file and line for tasks[0]."""
    server_path, _, message = detail.message.partition(": ")
    raw: list[str | int] = []
    # 3.15: workflowDef.tasks[0].forkTasks[0][1]; conductor-oss: arg0.tasks[0].forkTasks[0].<list
    # element>[1]; both: decisionCases[a].<map value>[0]
    for name, index in _INDEXED.findall(re.sub(r"\.?<[^>]*>", "", server_path).partition(".")[2]):
        raw.append(int(index) if index.isdigit() else index or name)
    display = display_path(resource.spec, raw)
    location = resource.origin.locate(raw, display) if resource.origin else Location(resource.title)
    return Problem(
        f"the server refuses {resource.title}: {message}",
        location,
        f"Fix it as the server says (POST /api/metadata/workflow/validate -> {status}).",
    )
