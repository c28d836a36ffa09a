"""`metasync export`: what servers hold, written as a project."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from metasync.adopt.export import export as export_one
from metasync.adopt.export import passwords_as_variables
from metasync.adopt.factor import Layout, factor, with_vars
from metasync.conductor.live import read_live
from metasync.errors import ConfigError, Location, Problem
from metasync.manifests.environment import (
    ENVIRONMENT_FILE,
    ENVIRONMENTS_DIR,
    PROJECT_FILE,
    load_environment,
)
from metasync.manifests.loader import MANIFESTS_DIR
from metasync.manifests.secrets import Secrets, hide_where_secret
from metasync.operations import init
from metasync.plan.select import Selector, nothing_selected, selected
from metasync.project import Project


def export(project: Project, envs: Sequence[str], out: Path, selectors: Sequence[Selector] = (),
           *, as_vars: bool = False) -> Exported:  # fmt: skip
    """Write what the servers of ``envs`` hold as a project in ``out``: manifests/ (one file
    per resource), and with several environments, what they share there and what differs in
    each environment's overlays (and vars, with ``as_vars``)."""
    lives = {}
    # where this project's manifests keep a secret, the server's value is one (perhaps rotated
    # since, or its variable unset here): exported as the manifest's placeholder
    for env in envs:
        templates = {r.key: r.spec for r in project.desired(env).resources}
        with project.connect(env) as client:
            live = read_live(client)
        # a secret value the server holds goes into git as its placeholder, never as itself
        secrets = Secrets.available(load_environment(project.root, env).config.secrets)
        lives[env] = replace(live, objects={
            k: secrets.mask(hide_where_secret(dict(v), templates.get(k, {})))
            for k, v in live.objects.items()
        })  # fmt: skip
    if len(envs) == 1:
        (env,) = envs
        done = export_one(lives[env], selectors)
        layout = Layout(done.files, {}, {}, done.warnings)
    else:
        layout = factor(lives, selectors, as_vars=as_vars)
    if selectors and not any(k for live in lives.values() for k in live.objects
                             if selected(selectors, k[0], k[1], {})):  # fmt: skip
        where = f"on the server{'s' if len(envs) > 1 else ''} of {', '.join(envs)}"
        layout.warnings.append(nothing_selected(selectors, where))
    written, warnings = _write_export(project, out, envs, layout)
    return Exported(tuple(envs), out, written, (*layout.warnings, *warnings))


def export_servers(servers: Mapping[str, str], out: Path, selectors: Sequence[Selector] = (),
                   *, as_vars: bool = False) -> Exported:  # fmt: skip
    """``export`` without a project: each environment's server given by its URL. ``out`` becomes
    a project of its own: metasync.yaml (named after ``out``'s folder, unless it has one), each
    environment's environment.yaml with its server, and the manifests."""
    for env, url in servers.items():
        init.check_env_name(env)
        init.check_server_url(url)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", out.resolve().name).strip("._-") or "metasync"
    files = {PROJECT_FILE: init.project_yaml(name), f"{MANIFESTS_DIR}/README.md": ""}
    for env, url in servers.items():
        files[f"{ENVIRONMENTS_DIR}/{env}/{ENVIRONMENT_FILE}"] = init.environment_yaml(url)
    with tempfile.TemporaryDirectory(prefix="metasync-export-") as scratch:
        init.write_files(Path(scratch), files)  # nothing lands in ``out`` unless the export does
        return export(Project(Path(scratch)), list(servers), out, selectors, as_vars=as_vars)


def _write_export(project: Project, out: Path, envs: Sequence[str], layout: Layout,
                  ) -> tuple[list[str], list[Problem]]:  # fmt: skip
    """Write ``layout`` and each environment's files into ``out``; the files written, and a
    warning for each password in a URL written as a variable instead."""
    files = dict(layout.files)
    warnings: list[Problem] = []
    for env in envs:
        source = project.root / ENVIRONMENTS_DIR / env / ENVIRONMENT_FILE
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
    if not (out / PROJECT_FILE).is_file() and (project.root / PROJECT_FILE).is_file():
        files[PROJECT_FILE] = (project.root / PROJECT_FILE).read_text()
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


@dataclass(frozen=True)
class Exported:
    environments: tuple[str, ...]
    out: Path
    files: list[str]  # relative to ``out``
    warnings: tuple[Problem, ...]
