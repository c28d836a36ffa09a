"""`metasync plan`: an environment's desired state against its server, checked by the server."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from metasync.conductor.client import ConductorClient
from metasync.conductor.live import LiveState, Older, read_live
from metasync.conductor.normalize import Flavour, flavour_of
from metasync.errors import Location, MetasyncError, Problem, ServerError, ValidationFailed
from metasync.manifests.environment import Environment, Ignore, Policy, load_environment
from metasync.manifests.secrets import Secrets
from metasync.manifests.suppression import split
from metasync.model.flavour import FLAVOUR_NAMES
from metasync.model.kinds import KINDS
from metasync.model.paths import display_path
from metasync.model.resource import Resource
from metasync.plan.memo import FingerprintMemo, text_digest
from metasync.plan.model import Change, Plan
from metasync.plan.planner import build_plan
from metasync.plan.prune import hold_back, with_running
from metasync.plan.select import Selector, nothing_selected, selected
from metasync.project import Desired, Project

T = TypeVar("T")
Key = tuple[str, str, int | None]
#: a change the server checked: its live and desired fingerprints then
Checked = tuple[str | None, str | None]


def plan(project: Project, env: str, selectors: Sequence[Selector] = (), pin: str | None = None,
         *, every_version: bool = False, checked: Mapping[Key, Checked] | None = None,
         detail: bool = True) -> Planned:  # fmt: skip
    """Render ``env``, read its server in bulk, plan, and let the server check what would change.

    The server is read while the manifests are rendered (the wait for its answer is most of a
    plan that changes nothing); the manifests' problems still come first. ``every_version``:
    read every workflow version the server holds, also those the plan needs not (drift reports
    who last wrote each one). ``checked``: changes this server checked already (a saved plan's,
    by key: its live and desired fingerprints); one that is still the same is not sent again.
    ``detail=False``: creates without their fields (a plan not shown: apply PLAN's)."""
    environment = load_environment(project.root, env)
    policy = environment.config.policy
    try:
        client = project.connect(env)
    except MetasyncError:  # the manifests' problems first, as when nothing is read early
        project.render(env, pin)
        raise
    with client:
        rendered: Future[Sequence[Resource]] = Future()
        # each object's text as listed keys the fingerprint memo (plan/memo.py): what could
        # show a secret the project has is not kept
        known = Secrets.available(environment.config.secrets).values.values()
        older = None if every_version else _older_needed(rendered, selectors, policy)
        said: Future[str | None] = Future()
        reading = _in_background(read_live, client, older, text_digest(known),
                                 said.set_result)  # fmt: skip
        try:
            checked_for = _flavour_to_check(project, env, client.url, said, reading)
            desired = project.render(env, pin, flavour=checked_for)
            used = {
                name
                for r in desired.resources
                if selected(selectors, r.kind, r.name, r.labels)
                for name in desired.secrets_of(r)
            }
            secrets = Secrets.from_environment(environment.config.secrets, used, environment.file)
        except BaseException as exc:
            rendered.set_exception(exc)  # the read gives up where it needs what git holds
            raise
        rendered.set_result(desired.resources)
        live = reading.result()
        # a server that did not say its version (a proxy, another vendor) teaches nothing
        if environment.config.server.flavour is None and live.version is not None:
            project.remember_server(env, live.server, live.version)
            if checked_for != live.flavour:  # checked for another flavour: again
                desired = project.render(env, pin, flavour=live.flavour)
        _kinds_it_has(
            [r for r in desired.resources if selected(selectors, r.kind, r.name, r.labels)],
            live, client.label,
        )  # fmt: skip
        memo, damaged = project.fingerprint_memo(env, secrets.values.values())
        plan = build_plan(env, desired.resources, live, selectors, secrets=secrets,
                          mark=project.mark, policy=policy, ignore=environment.ignore,
                          memo=memo, facts=desired.fact, detail=detail)  # fmt: skip
        if live.partial and any(c.action == "delete" for c in plan.changes):
            # prune: whether what stays still uses a delete is judged against every version
            live = read_live(client, None, text_digest(known))
            plan = build_plan(env, desired.resources, live, selectors, secrets=secrets,
                              mark=project.mark, policy=policy, ignore=environment.ignore,
                              memo=memo, facts=desired.fact, detail=detail)  # fmt: skip
        project.keep_fingerprints(env, memo)
        plan = replace(plan, project=(project.identity.name, project.identity.source),
                       warnings=(*plan.warnings, *_idle_ignores(environment, desired, live),
                                 *damaged))  # fmt: skip
        if selectors and not plan.changes and not plan.unmanaged:
            where = f"in git or on the server of {env}"
            plan = replace(plan, warnings=(*plan.warnings, nothing_selected(selectors, where)))
        plan = with_executions(plan, client)
        problems, unchecked = _server_checks(
            plan, desired.resources, client, secrets, checked or {}
        )
    if problems:
        raise ValidationFailed(problems)
    kept, silenced = split(plan.warnings, desired.suppressions)
    plan = replace(plan, warnings=tuple(kept))
    return Planned(hold_back(plan, unchecked), desired, live, secrets,
                   ignore=environment.ignore, silenced=tuple(silenced), memo=memo)  # fmt: skip


#: how long a plan waits for the server to say its version, when the manifests' checks need it
#: (its lists are read meanwhile); past that, they are checked for no flavour, then again
VERSION_WAIT_S = 5.0


def _flavour_to_check(project: Project, env: str, url: str, said: Future[str | None],
                      reading: Future[LiveState]) -> Flavour | None:  # fmt: skip
    """The flavour to check the manifests for: the environment's (declared, or remembered from
    its server), or else the one its server at ``url`` says now (remembered, also when the
    checks then fail). Checked once, not once for no flavour and again for the server's: a cold
    CI run knows no server, and would load 10,000 workflows twice."""
    known = project.flavour(env)
    if known is not None:
        return known
    either: list[Future[Any]] = [said, reading]
    wait(either, timeout=VERSION_WAIT_S, return_when=FIRST_COMPLETED)
    version = said.result() if said.done() else None
    if version is None:
        return None
    project.remember_server(env, url, version)
    return flavour_of(version)


@dataclass(frozen=True)
class Planned:
    plan: Plan
    desired: Desired
    live: LiveState
    secrets: Secrets  # values in memory only, for the writes; never rendered
    #: environment.yaml's ignore: (the read-back after apply leaves the same fields out)
    ignore: tuple[Ignore, ...] = ()
    #: the plan's own warnings that warnings.ignore silenced
    silenced: tuple[Problem, ...] = ()
    #: the fingerprints the plan knew and found (the read-back after apply adds to them)
    memo: FingerprintMemo | None = None

    @property
    def warnings(self) -> list[Problem]:
        """The manifests' warnings and the server's (fields it does not know), once each."""
        return list(dict.fromkeys((*self.desired.warnings, *self.plan.warnings)))

    @property
    def suppressed(self) -> int:
        return len(self.desired.suppressed) + len(self.silenced)


def _in_background(call: Callable[..., T], *args: Any) -> Future[T]:
    """``call(*args)`` in a daemon thread: a command that fails meanwhile exits without waiting
    for it (a read of a server that does not answer is retried for seconds)."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(call(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="metasync-read", daemon=True).start()
    return future


def _older_needed(rendered: Future[Sequence[Resource]], selectors: Sequence[Selector],
                  policy: Policy) -> Older | None:  # fmt: skip
    """Which older workflow versions (not a name's newest) the plan needs; None: all of them.

    With policy new-version: those of the workflows git does not hold that the selection takes
    in (the plan lists them, whether metasync wrote them, or prunes them); the history of the
    workflows git holds is the server's own (plan/versions.py). In place: exactly the versions
    git holds (an older one is updated where it is); the other older versions are history, not
    read nor listed (drift reads and lists them), unless policy.prune is on: whether metasync
    wrote each one decides a prune, so then every version is read. What git holds is asked when
    it is needed: the read starts before the manifests are rendered."""
    if policy.versioning != "new-version":
        return None if policy.prune else _Held(rendered, selectors)

    @functools.cache
    def held() -> frozenset[str]:
        return frozenset(
            r.name
            for r in rendered.result()
            if KINDS[r.kind].versioned and selected(selectors, r.kind, r.name, r.labels)
        )

    return lambda name, _version: (
        name not in held() and selected(selectors, "WorkflowDef", name, {})
    )


class _Held(AbstractSet[tuple[str, int]]):
    """The (name, version) of each workflow git holds in the selection, once rendered."""

    def __init__(self, rendered: Future[Sequence[Resource]], selectors: Sequence[Selector]):
        self._rendered = rendered
        self._selectors = selectors

    @functools.cached_property
    def _keys(self) -> frozenset[tuple[str, int]]:
        return frozenset(
            (r.name, r.version or 1)
            for r in self._rendered.result()
            if KINDS[r.kind].versioned and selected(self._selectors, r.kind, r.name, r.labels)
        )

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _idle_ignores(environment: Environment, desired: Desired, live: LiveState) -> list[Problem]:
    """A warning for each ``ignore:`` entry that names no object in git or on the server (a typo
    in a kind or a name glob would silently ignore nothing)."""
    names = {(r.kind, r.name) for r in desired.resources} | {k[:2] for k in live.objects}
    return [
        Problem(
            f"ignore: {rule.kind or 'any kind'} named {rule.name!r} matches no object in git or "
            "on the server: it ignores nothing",
            at,
            "Check the kind and the name glob, or remove the entry.",
            "warning",
            "idle-field-ignore",
        )
        for rule, at in zip(environment.ignore, environment.ignore_at, strict=False)
        if not any(rule.matches(kind, name) for kind, name in names)
    ]


def _kinds_it_has(resources: Sequence[Resource], live: LiveState, server: str) -> None:
    """Refuse, at each manifest, a resource of a kind the server does not have (no endpoint)."""
    problems = [
        Problem(
            f"{server} has no {r.kind} endpoint (GET /api{KINDS[r.kind].endpoints.list} -> 404): "
            f"{r.title} cannot be applied there",
            r.origin.locate(("name",), "name") if r.origin else Location(r.title),
            f"Run this environment on {' or '.join(FLAVOUR_NAMES[f] for f in KINDS[r.kind].flavours)}"
            f" (with its {r.kind} feature on), or keep {r.kind} manifests out of this project.",
        )
        for r in resources
        if r.kind in live.missing
    ]
    if problems:
        raise ValidationFailed(problems)


def with_executions(plan: Plan, client: ConductorClient) -> Plan:
    """The plan with the running executions of each workflow version it deletes or updates in
    place (a delete blocked, an update noted). A count that fails (the server kept failing for
    that one name) blocks that name's deletes only: the rest of the plan goes on."""
    touched: dict[tuple[str, str], set[int]] = {}
    for change in plan.pending:
        if KINDS[change.kind].executions and change.action in ("delete", "update"):
            touched.setdefault((change.kind, change.name), set()).add(change.version or 1)

    def count(item: tuple[tuple[str, str], set[int]]) -> dict[int, list[str]] | ServerError:
        (_, name), versions = item
        try:
            return client.running_executions(name, versions)
        except ServerError as exc:
            return exc

    found: dict[tuple[str, str, int | None], list[str]] = {}
    failed: dict[tuple[str, str, int | None], str] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:  # one request per name: let them overlap
        names = sorted(touched.items())
        for ((kind, name), versions), answer in zip(names, pool.map(count, names), strict=True):
            if isinstance(answer, ServerError):
                for version in versions:
                    failed[(kind, name, version)] = (
                        f"its running executions could not be counted ({answer.problem.message}): "
                        "not deleted this run"
                    )
                continue
            for version, ids in answer.items():
                if ids:
                    found[(kind, name, version)] = ids
    plan = with_running(plan, found)
    return hold_back(plan, failed, actions=("delete",))


def mask_problem(problem: Problem, secrets: Secrets) -> Problem:
    return Problem(secrets.mask(problem.message), problem.location, problem.hint, problem.severity)


def _server_checks(plan: Plan, resources: Sequence[Resource], client: ConductorClient,
                   secrets: Secrets, checked: Mapping[Key, Checked]) -> tuple[list[Problem], dict[Key, str]]:  # fmt: skip
    """Ask the server to validate each workflow that would be written (nothing is stored): what
    it refuses, and why each workflow it could not check (it kept failing) is held back. Not
    those ``checked`` has with the same fingerprints (the server answered for them already)."""
    # by name too: under policy new-version a change carries the version it will be written as
    by_name = {(r.kind, r.name): r for r in resources}
    by_key = {r.key: r for r in resources}
    changes = [
        c
        for c in plan.pending
        if KINDS[c.kind].validate
        and c.desired is not None
        and checked.get(c.key) != (c.live_fingerprint, c.desired_fingerprint)
    ]

    def check(change: Change) -> ServerError | None:
        try:
            client.validate(KINDS[change.kind], dict(change.desired or {}))
        except ServerError as exc:
            return exc
        return None

    problems: list[Problem] = []
    unchecked: dict[Key, str] = {}
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
            problems += [mask_problem(p, secrets) for p in found]
    return problems, unchecked


_INDEXED = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")
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
