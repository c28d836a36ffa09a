"""`metasync drift --adopt`: live edits written back into git, on a branch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metasync.adopt.adopt import edit_manifest, overlay_document, replace_document
from metasync.adopt.adopt import load_all as yaml_load_all
from metasync.adopt.changes import Unsaid
from metasync.adopt.changes import edits as adoption_edits
from metasync.adopt.export import minimal, overlay_file
from metasync.conductor.normalize import Flavour
from metasync.errors import ConfigError, Location
from metasync.manifests.environment import ENVIRONMENTS_DIR, load_environment
from metasync.manifests.gitref import commit_files_on_branch, open_repo
from metasync.manifests.loader import MANIFESTS_DIR, load_manifests
from metasync.manifests.overlays import overlay_targets
from metasync.manifests.secrets import hide_where_secret
from metasync.manifests.variables import manifest_lookup
from metasync.manifests.yamlio import DocumentLocator, dump_documents
from metasync.model.fingerprint import canonical_json
from metasync.model.resource import Resource
from metasync.operations.plan import plan as make_plan
from metasync.plan.drift import classify
from metasync.plan.select import Selector
from metasync.project import Project
from metasync.render.values import paths_summary


def adopt(project: Project, envs: Sequence[str], *, branch: str | None = None,
          selectors: Sequence[Selector] = ()) -> Adoption | None:  # fmt: skip
    """Rewrite git so it says what each server holds for the objects edited there (drift
    ``live-edited``), on a new branch; the checkout is untouched. None: nothing to adopt."""
    repo = open_repo(project.root)
    for folder in (MANIFESTS_DIR, ENVIRONMENTS_DIR):
        if repo.is_dirty(untracked_files=True, path=str(project.root / folder)):
            raise ConfigError(
                f"{folder}/ has uncommitted changes: the adoption branch starts from HEAD",
                location=Location(f"{folder}/"),
                hint="Commit (or stash) them, then adopt.",
            )
    repo_root = Path(repo.working_tree_dir or project.root).resolve()
    files: dict[str, str] = {}  # relative to the project
    lines: list[str] = []
    for env in envs:
        lines += _adopt_env(project, env, files, selectors)
    if not lines:
        return None
    head = repo.head.commit
    name = branch or f"adopt/{'-'.join(envs)}-{head.hexsha[:7]}"
    prefix = project.root.relative_to(repo_root).as_posix()
    message = f"Adopt live edits on {', '.join(envs)}\n\n" + "\n".join(lines)
    new = commit_files_on_branch(
        repo, head,
        {(f"{prefix}/{path}" if prefix != "." else path): text for path, text in files.items()},
        branch=name, message=message,
    )  # fmt: skip
    return Adoption(name, new.hexsha, tuple(lines))


def _adopt_env(project: Project, env: str, files: dict[str, str],
               selectors: Sequence[Selector]) -> list[str]:  # fmt: skip
    planned = make_plan(project, env, selectors)
    edited = [d for d in classify(planned.plan, planned.live, project.mark)
              if d.type == "live-edited"]  # fmt: skip
    if not edited:
        return []
    environment = load_environment(project.root, env, connect=False)
    config = environment.config
    lookup = manifest_lookup(env, config.vars, config.secrets, environment.file)
    pin = config.promotion.ref
    pinned = bool(pin)
    source = project.manifests_at(pin, environment.file) if pin else None
    bases = {r.key: r for r in load_manifests(project.root, lookup, source).resources}
    targets = overlay_targets(project.root, env)
    flavour = planned.live.flavour
    lines = []
    for item in edited:
        key = (item.kind, item.name, item.version)
        base = bases[key]
        live = hide_where_secret(dict(planned.live.objects[key]), base.spec)
        where = None
        if not pinned and not _overlaid(targets, key):
            where = _adopt_in_manifest(project, base, live, flavour, files)
        if where is None:
            versions = sum(k[0] == base.kind and k[1] == base.name for k in bases)
            where = _adopt_in_overlay(project, env, base, live, flavour=flavour, targets=targets,
                                           files=files, versions=versions)  # fmt: skip
        lines.append(f"- {env}: {item.title}: {paths_summary(item.fields)} -> {where}")
    return lines


def _adopt_in_manifest(project: Project, base: Resource, live: Mapping[str, Any], flavour: Flavour,
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
        text = files.get(path) or (project.root / path).read_text()
        files[path] = edit_manifest(text, origin.index, changes)
    except Unsaid:
        return None
    return path


def _adopt_in_overlay(project: Project, env: str, base: Resource, live: Mapping[str, Any], *,
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
            (project.root / path).read_text() if (project.root / path).is_file() else None
        )
        files[path] = replace_document(current, None, document)
        return path
    path, index = at
    text = files.get(path) or (project.root / path).read_text()
    files[path] = replace_document(text, index, document)
    return path


@dataclass(frozen=True)
class Adoption:
    branch: str
    commit: str
    lines: tuple[str, ...]  # what was adopted, and where


def _overlaid(targets: Mapping[Any, Any], key: tuple[str, str, int | None]) -> bool:
    return key in targets or (key[0], key[1], None) in targets
