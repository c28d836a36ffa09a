"""``metasync.yaml`` and ``environments/<env>/environment.yaml`` (docs/manifests.md, docs/environments.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from metasync.errors import (
    RULES,
    ConfigError,
    Location,
    Problem,
    ValidationFailed,
    did_you_mean,
)
from metasync.manifests.schema import problems_from
from metasync.manifests.variables import Unresolved, substitute
from metasync.manifests.yamlio import DocumentLocator, parse_documents, read_text
from metasync.model.fieldpath import FieldPath, parse_field_path
from metasync.model.kinds import KINDS

ENVIRONMENTS_DIR = "environments"
ENVIRONMENT_FILE = "environment.yaml"
PROJECT_FILE = "metasync.yaml"


_URL = re.compile(r"^(https?://[^\s/]+\S*|\(\(env\.\w+\)\))$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class Auth(_Strict):
    keyIdEnv: str = Field(min_length=1)
    keySecretEnv: str = Field(min_length=1)


class Server(_Strict):
    #: an unresolved ``((env.NAME))`` is left for offline commands (see load_environment)
    url: str

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not _URL.match(url):
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return url.rstrip("/")

    auth: Auth | None = None
    timeoutSeconds: float = Field(30.0, gt=0)
    #: which server the checks mirror: "3.15" (Netflix Conductor before 3.21) or "oss"
    #: (conductor-oss 3.21+); left out, it is learned from the server at the first plan
    flavour: Literal["3.15", "oss"] | None = None


class Promotion(_Strict):
    from_: str | None = Field(None, alias="from")
    ref: str | None = None


class Policy(_Strict):
    versioning: Literal["in-place", "new-version"] = "in-place"
    prune: bool = False
    protect: list[str] = Field(default_factory=list)
    maxDeletes: int = Field(10, ge=0)
    #: how long an apply's lock holds when its run dies without releasing it
    lockTimeoutMinutes: float = Field(30, gt=0)
    #: whether git decides the fields that are live state (a schedule's paused); by default the
    #: server's operators do, and plans leave them out
    manageLiveState: bool = False
    #: whether a reconcile on the control plane started with apply: true applies this
    #: environment when its server differs from git (self-heal); otherwise it only reports
    autoSync: bool = False


class Backups(_Strict):
    #: where apply saves before-images, relative to the project (``<dir>/<env>/...json``)
    dir: str = Field(".metasync/backups", min_length=1)


class Ignore(_Strict):
    """A field another system manages (ignoreDifferences): left out of plan and drift, both ways;
    an update keeps the server's value of it, a create writes git's."""

    #: the kind it applies to (left out: every kind)
    kind: str | None = None
    #: a glob of object names
    name: str = Field("*", min_length=1)
    #: a field path as plans show it (model/fieldpath.py)
    path: str
    #: for people: why (which system manages it)
    reason: str = ""

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str | None) -> str | None:
        if kind is not None and kind not in KINDS:
            raise ValueError(
                f"unknown kind {kind!r}{did_you_mean(kind, list(KINDS))} (kinds: {', '.join(KINDS)})"
            )
        return kind

    @field_validator("path")
    @classmethod
    def _field_path(cls, path: str) -> str:
        parse_field_path(path)
        return path

    @property
    def field_path(self) -> FieldPath:
        return parse_field_path(self.path)

    def matches(self, kind: str, name: str) -> bool:
        return (self.kind is None or self.kind == kind) and fnmatchcase(name, self.name)


def _path_alone(rule: Any) -> Any:
    """``- description``: the field path alone, for every object."""
    return {"path": rule} if isinstance(rule, str) else rule


_IgnoreEntry = Annotated[Ignore, BeforeValidator(_path_alone, json_schema_input_type=Ignore | str)]


def _one_or_many(files: Any) -> Any:
    return [files] if isinstance(files, str) else files


class WarningIgnore(_Strict):
    """One ``warnings.ignore`` entry: a rule silenced (in these files), and why."""

    rule: str
    #: glob(s) of the project-relative files it applies to (``*`` also crosses folders): one
    #: glob may be written alone
    files: Annotated[
        list[str], BeforeValidator(_one_or_many, json_schema_input_type=str | list[str])
    ] = Field(default_factory=list)
    reason: str | None = None

    @field_validator("rule")
    @classmethod
    def _known(cls, rule: str) -> str:
        if rule not in RULES:
            raise ValueError(
                f"{rule!r} is not a warning rule (each warning names its rule in brackets, e.g. "
                f"[undefined-taskdef]){did_you_mean(rule, RULES)}"
            )
        return rule

    @model_validator(mode="after")
    def _reasoned(self) -> WarningIgnore:
        if not (self.reason or "").strip():
            raise ValueError(
                f"warnings.ignore of {self.rule} has no reason: say why the warning does not "
                "apply (reason: ...), for whoever reads this next"
            )
        return self


class WarningSettings(_Strict):
    ignore: list[WarningIgnore] = Field(default_factory=list)
    #: where each entry of ``ignore`` is written (set when the file is read)
    _places: tuple[Location, ...] = PrivateAttr(default=())

    def place(self, index: int) -> Location | None:
        return self._places[index] if index < len(self._places) else None

    def placed(self, locator: DocumentLocator) -> None:
        self._places = tuple(
            locator.locate(("warnings", "ignore", i), f"warnings.ignore[{i}]")
            for i in range(len(self.ignore))
        )


class EnvironmentConfig(_Strict):
    server: Server
    vars: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    promotion: Promotion = Field(default_factory=Promotion)
    policy: Policy = Field(default_factory=Policy)
    backups: Backups = Field(default_factory=Backups)
    #: webhooks told about drift and apply results (often credentials: use ((env.NAME)))
    notify: list[str] = Field(default_factory=list)
    #: fields other systems manage: a field path alone (every object) or {kind, name, path, reason}
    ignore: list[_IgnoreEntry] = Field(default_factory=list)
    #: warnings silenced for this environment
    warnings: WarningSettings = Field(default_factory=WarningSettings)

    @field_validator("notify")
    @classmethod
    def _webhooks(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not _URL.match(url):
                raise ValueError("a webhook must be an http:// or https:// URL or ((env.NAME))")
        return urls


class ProjectSettings(_Strict):
    name: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    #: fields other systems manage, in every environment (each environment.yaml may add its own)
    ignore: list[_IgnoreEntry] = Field(default_factory=list)
    #: warnings silenced for the whole project
    warnings: WarningSettings = Field(default_factory=WarningSettings)


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    file: str  # as shown to people, relative to the project
    config: EnvironmentConfig
    #: metasync.yaml's ignore: entries, then the environment's own
    ignore: tuple[Ignore, ...] = ()
    #: where each entry of ``ignore`` is written
    ignore_at: tuple[Location, ...] = ()


def environment_names(root: Path) -> list[str]:
    base = root / ENVIRONMENTS_DIR
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / ENVIRONMENT_FILE).is_file())


def _single_mapping(path: Path, display: str) -> tuple[dict[str, Any], DocumentLocator]:
    docs = parse_documents(read_text(path, display), display)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise ConfigError(
            "expected exactly one YAML mapping in this file",
            location=docs[1].locator.locate(()) if len(docs) > 1 else Location(display, 1),
        )
    return docs[0].data, docs[0].locator


def load_environment(root: Path, name: str, *, connect: bool = True) -> Environment:
    """Read, resolve ``((env.NAME))`` and validate one environment's settings.

    With ``connect=False`` (offline commands: validate, render) the ``server`` section may keep
    ``((env.NAME))`` placeholders whose variable is not set: a CI job that only validates needs no
    server URL or credentials.
    """
    available = environment_names(root)
    if name not in available:
        listed = ", ".join(available) or "none"
        raise ConfigError(
            f"unknown environment {name!r}{did_you_mean(name, available)}",
            location=Location(f"{ENVIRONMENTS_DIR}/"),
            hint=f"Environments in this project: {listed}. "
            f"Each is a folder {ENVIRONMENTS_DIR}/<name>/ with an {ENVIRONMENT_FILE}.",
        )
    display = f"{ENVIRONMENTS_DIR}/{name}/{ENVIRONMENT_FILE}"
    data, locator = _single_mapping(root / ENVIRONMENTS_DIR / name / ENVIRONMENT_FILE, display)

    unresolved: list[Unresolved] = []
    data = {
        key: substitute(
            value,
            _env_lookup(keep_unset=key in ("server", "notify") and not connect),
            unresolved,
            (key,),
        )
        for key, value in data.items()
    }
    problems = [
        Problem(u.message, locator.locate(u.path, ".".join(map(str, u.path))), u.hint)
        for u in unresolved
    ]
    if problems:
        raise ValidationFailed(problems)
    try:
        config = EnvironmentConfig.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(problems_from(exc, EnvironmentConfig, data, locator)) from None
    config.warnings.placed(locator)
    settings, project_locator = _settings(root)
    ignore_at = tuple(
        where.locate(("ignore", i), f"ignore[{i}]")
        for where, rules in ((project_locator, settings.ignore), (locator, config.ignore))
        if where is not None
        for i in range(len(rules))
    )
    return Environment(name, display, config, (*settings.ignore, *config.ignore), ignore_at)


def _env_lookup(keep_unset: bool) -> Callable[[str, str], Any]:
    def lookup(namespace: str, var: str) -> Any:
        if namespace != "env":
            raise LookupError(
                f"(({namespace}.{var})) cannot be used in {ENVIRONMENT_FILE}",
                f"Only ((env.NAME)) is read here; {namespace} are for manifests and overlays.",
            )
        if var in os.environ:
            return os.environ[var]
        if keep_unset:
            return f"((env.{var}))"
        raise LookupError(
            f"process environment variable {var} is not set (read by ((env.{var})))",
            f"Export {var} before running metasync.",
        )

    return lookup


def load_settings(root: Path) -> ProjectSettings:
    return _settings(root)[0]


def _settings(root: Path) -> tuple[ProjectSettings, DocumentLocator | None]:
    path = root / PROJECT_FILE
    if not path.is_file():
        return ProjectSettings(), None
    data, locator = _single_mapping(path, PROJECT_FILE)
    try:
        settings = ProjectSettings.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(problems_from(exc, ProjectSettings, data, locator)) from None
    settings.warnings.placed(locator)
    return settings, locator
