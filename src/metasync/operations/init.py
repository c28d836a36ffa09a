"""`metasync init`: a new project with one environment, ready for its first manifest."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from metasync.errors import ConfigError, Location
from metasync.local import LOCAL_DIR
from metasync.manifests.environment import (
    ENVIRONMENT_FILE,
    ENVIRONMENTS_DIR,
    PROJECT_FILE,
    ProjectSettings,
    Server,
)
from metasync.manifests.gitref import open_repo, remote_identity
from metasync.manifests.json_schema import (
    DEFAULT_FLAVOUR,
    SCHEMA_KINDS,
    dumps,
    file_name,
    json_schema,
)
from metasync.manifests.loader import MANIFESTS_DIR
from metasync.model.flavour import Flavour
from metasync.project import find_project

#: where init writes the project's JSON Schemas (as this repository publishes its own)
SCHEMAS_DIR = "schemas"

#: an environment is a folder name, and a word in branch names and lock names
_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
FLAVOURS = ("3.15", "oss")
GITIGNORE = ".gitignore"

_MANIFESTS_README = """\
# manifests/

One YAML file or more per Conductor object, in any folders and under any file names; a file may
hold several documents separated by `---`. Each document wraps exactly the JSON object Conductor
takes:

    apiVersion: metasync/v1
    kind: WorkflowDef        # TaskDef | WorkflowDef | EventHandler | WorkflowSchedule
    metadata: {name: ...}
    spec: {...}              # Conductor's own fields

`((vars.NAME))` takes a value from the environment's `vars:`; `((secrets.NAME))` a secret it maps.
Then: `metasync validate`, `metasync plan --env ENV`, `metasync apply --env ENV`.

Editors (VS Code's YAML extension, IntelliJ) complete and check a manifest whose first line names
the project's schema, relative to the file (`metasync schema --out schemas` writes it again):

    # yaml-language-server: $schema=../schemas/manifest.schema.json
"""


@dataclass(frozen=True)
class Initialised:
    root: Path
    name: str
    #: the name came from the git remote (not given)
    from_remote: bool
    env: str
    files: tuple[str, ...]  # relative to ``root``, in the order written
    #: the project is in a git repository (promotion, changed and drift --adopt need one)
    in_git: bool


def check_env_name(env: str, option: str = "--env") -> str:
    if not _ENV_NAME.match(env):
        raise ConfigError(
            f"{option} {env!r} cannot name an environment: it is a folder name, letters, digits, "
            "'.', '_' and '-' (not first)",
            hint=f"Pass e.g. {option} dev.",
        )
    return env


def check_server_url(url: str, option: str = "--server") -> str:
    try:
        return Server(url=url).url
    except ValidationError:
        raise ConfigError(
            f"{option} {url!r} is not an http:// or https:// URL",
            hint=f"Pass the Conductor server's address without /api, e.g. {option} "
            "http://localhost:8080.",
        ) from None


def check_project_name(name: str) -> str:
    try:
        ProjectSettings(name=name)
    except ValidationError:
        raise ConfigError(
            f"--name {name!r} cannot name a project: letters, digits, '.', '_' and '-' only",
            hint="It marks what metasync writes on servers (ownerApp) and names the apply lock: "
            "pass e.g. --name orders.",
        ) from None
    return name


def default_name(root: Path) -> str | None:
    """The name the repository's remote gives a project in ``root`` (None without one)."""
    return remote_identity(root)


def existing(root: Path) -> list[str]:
    """What in ``root`` already belongs to a project (init refuses to overwrite it)."""
    return [
        f"{part}/" if (root / part).is_dir() else part
        for part in (PROJECT_FILE, MANIFESTS_DIR, ENVIRONMENTS_DIR)
        if (root / part).exists()
    ]


def refuse_existing(root: Path) -> None:
    found = existing(root)
    if found:
        raise ConfigError(
            f"there is a metasync project here already: {', '.join(found)} exist",
            location=Location(str(root)),
            hint="Nothing was written. Add an environment as a folder "
            f"{ENVIRONMENTS_DIR}/<env>/ with an {ENVIRONMENT_FILE}, or run metasync init in "
            "another folder.",
        )
    try:
        outer = find_project(root)
    except ConfigError:
        return
    raise ConfigError(
        f"{root} is inside the metasync project at {outer}",
        location=Location(str(outer / PROJECT_FILE)),
        hint="Nothing was written. Add manifests to that project (or an environment to its "
        f"{ENVIRONMENTS_DIR}/), or run metasync init in a folder outside it.",
    )


def environment_yaml(url: str, flavour: str | None = None) -> str:
    """A new environment's environment.yaml: its server, and every setting at its default."""
    plain = re.fullmatch(r"[\w:/.~?=&%+@-]+", url)
    server = f"server:\n  url: {url if plain else json.dumps(url)}\n"
    if flavour is not None:
        server += f'  flavour: "{flavour}"       # or learned from the server at the first plan\n'
    return (
        f"{server}"
        "vars: {}                  # NAME: value, used by ((vars.NAME)) in manifests\n"
        "secrets: {}               # NAME: PROCESS_VARIABLE, used by ((secrets.NAME))\n"
        "promotion: {from: null, ref: null}\n"
        "policy:\n"
        "  versioning: in-place    # or new-version: a changed workflow becomes a new version\n"
        "  prune: false            # true: delete what metasync wrote and git no longer has\n"
        "  protect: []             # name globs never updated or deleted without --force\n"
        "  maxDeletes: 10\n"
        "  lockTimeoutMinutes: 30\n"
        "  manageLiveState: false\n"
    )


def project_yaml(name: str) -> str:
    return (
        "# marks what metasync writes on servers (ownerApp: metasync/<name>) and names the apply\n"
        "# lock: every checkout must agree on it, so change it only before the first apply\n"
        f"name: {name}\n"
    )


def skeleton(name: str, env: str, url: str, flavour: str | None = None) -> dict[str, str]:
    """A new project's files (path relative to its root -> content): the project's JSON Schemas
    in ``schemas/`` too, named on the first line of the files it writes, for editors."""
    server: Flavour = "3.15" if flavour == "3.15" else DEFAULT_FLAVOUR
    schemas = {kind: f"{SCHEMAS_DIR}/{file_name(kind, server)}" for kind in SCHEMA_KINDS}
    return {
        PROJECT_FILE: _schema_line(schemas["project"], 0) + project_yaml(name),
        f"{MANIFESTS_DIR}/README.md": _MANIFESTS_README,
        f"{ENVIRONMENTS_DIR}/{env}/{ENVIRONMENT_FILE}": _schema_line(schemas["environment"], 2)
        + environment_yaml(url, flavour),
        **{path: dumps(json_schema(kind, server)) for kind, path in schemas.items()},
    }


def _schema_line(schema: str, depth: int) -> str:
    """The comment that tells editors a file's schema (``depth``: folders below the root)."""
    return f"# yaml-language-server: $schema={'../' * depth}{schema}\n"


def write_files(root: Path, files: dict[str, str]) -> None:
    try:
        for path, content in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(content)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the project: {exc.strerror}",
            location=Location(str(root)),
            hint="Run metasync init in a folder you can write to.",
        ) from None


def init(root: Path, *, name: str | None, env: str, server: str,
         flavour: str | None = None) -> Initialised:  # fmt: skip
    """Write a new project into ``root`` (created when missing): metasync.yaml, manifests/, one
    environment, and ``.metasync/`` in .gitignore. Refuses when ``root`` holds a project."""
    root = root.resolve()
    refuse_existing(root)
    check_env_name(env)
    url = check_server_url(server)
    if flavour is not None and flavour not in FLAVOURS:
        raise ConfigError(
            f"--flavour {flavour!r} is not a server flavour",
            hint="Pass --flavour 3.15 (Netflix Conductor before 3.21) or --flavour oss "
            "(conductor-oss 3.21+), or leave it out: the first plan asks the server.",
        )
    from_remote = name is None
    if name is None:
        name = default_name(root)
    if name is None:
        raise ConfigError(
            "the project needs a name: it marks what metasync writes on servers and names the "
            "apply lock",
            hint="Pass --name NAME (or run metasync init in a git repository with a remote: its "
            "path names the project).",
        )
    check_project_name(name)
    files = skeleton(name, env, url, flavour)
    ignore = root / GITIGNORE
    kept = ignore.read_text() if ignore.is_file() else ""
    if not re.search(rf"(?m)^/?{re.escape(LOCAL_DIR)}/?$", kept):
        files[GITIGNORE] = kept + ("\n" if kept and not kept.endswith("\n") else "")
        files[GITIGNORE] += f"{LOCAL_DIR}/\n"
    write_files(root, files)
    in_git = True
    try:
        open_repo(root)
    except ConfigError:
        in_git = False
    return Initialised(root, name, from_remote, env, tuple(files), in_git)
