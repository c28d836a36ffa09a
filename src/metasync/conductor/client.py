"""The Conductor metadata API over httpx (reference/conductor-api.md §1, §6, §7).

The only module that talks HTTP. Reads are bulk (one request per kind); every failure becomes a
``ServerError`` naming the request, the status and the server's own message.

Transient failures are retried, a bounded number of times: ``RETRY_ATTEMPTS`` attempts in all, the
waits between them starting at ``RETRY_BASE_DELAY_S`` and doubling up to ``RETRY_MAX_DELAY_S``,
with jitter (each wait is half to all of its step); a ``Retry-After`` in seconds is honoured, up
to ``RETRY_AFTER_CAP_S``. The client reads these module values when it is made (tests shrink them).

* Never reached the server (connect error or timeout), or turned away with 429: every request is
  tried again, since nothing was carried out.
* Sent, but no answer (read timeout, connection closed or reset), or 502/503/504: only idempotent
  requests are sent again: GET, PUT, DELETE, and the POSTs that are an upsert or a dry run
  (``/metadata/taskdefs``, ``/metadata/workflow/validate``). A DELETE answered 404 after such an
  attempt is done.
* The same for a create (POST ``/metadata/workflow``, ``/event``): the object is read back first.
  There and as sent: the create is done. Not there: it is sent again. There but different: someone
  else made it, reported like a 409.

Any other 4xx, and a 500, is reported at once. Only a 2xx is success: a redirect is an error naming
where it points, never followed (a login page or another server is not the API). When the attempts run out, ``ServerError.ambiguous``
says whether the request may have been carried out all the same (apply reports such an object
"unknown" until it reads the server back).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from metasync.conductor.answers import body_of, json_of, status_of
from metasync.conductor.auth import OrkesAuth
from metasync.conductor.transport import Json, Transport, _ReadBack
from metasync.errors import Problem, ServerError, redact_url
from metasync.model.kinds import KINDS, Kind

#: attempts in all for one request, the first included
RETRY_ATTEMPTS = 5
#: the wait after the first failed attempt; it doubles after each further one
RETRY_BASE_DELAY_S = 0.2
#: the longest step between two attempts (jitter takes up to half of it off)
RETRY_MAX_DELAY_S = 3.0
#: the most JSON one list request carries (a step's objects are split further past it)
BATCH_BYTES = 8 * 1024 * 1024


#: an object's JSON text, as the server wrote it -> what the caller keeps of it (conductor/stream.py)
Digest = Callable[[str], Any]


class LiveReader(Protocol):
    """What plan, drift and status may do with a server: read."""

    label: str
    url: str

    def server_version(self) -> str | None: ...
    def objects(self, kind: Kind, digest: Digest | None = None) -> list[Json] | None: ...
    def newest_workflows(self, digest: Digest | None = None) -> list[Json] | None: ...
    def workflow_versions(self) -> dict[str, list[int]] | None: ...
    def workflow(self, name: str, version: int | None = None) -> Json | None: ...


class LiveWriter(LiveReader, Protocol):
    """What apply may do besides reading."""

    def create(self, kind: Kind, specs: Sequence[Json]) -> None: ...
    def lists_creates(self, kind: Kind) -> bool: ...
    def update(self, kind: Kind, specs: Sequence[Json]) -> None: ...
    def delete(self, kind: Kind, name: str, version: int | None) -> None: ...


class ConductorClient(Transport):
    """One environment's server. Implements LiveReader and LiveWriter.

    ``retry_attempts``, ``retry_base_delay`` and ``retry_max_delay`` default to the module's
    ``RETRY_*`` values; ``sleep`` is how it waits between attempts.
    """

    def __init__(
        self,
        http: httpx.Client,
        label: str,
        *,
        retry_attempts: int | None = None,
        retry_base_delay: float | None = None,
        retry_max_delay: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(
            http, label,
            attempts=RETRY_ATTEMPTS if retry_attempts is None else retry_attempts,
            base_delay=RETRY_BASE_DELAY_S if retry_base_delay is None else retry_base_delay,
            max_delay=RETRY_MAX_DELAY_S if retry_max_delay is None else retry_max_delay,
            sleep=sleep,
        )  # fmt: skip
        self._lists_creates: bool | None = None  # lists_creates(), asked once
        #: the server's names and versions as read before the first list of new workflows, and
        #: what the lists since wrote
        self._index: dict[str, list[int]] | None = None
        # as shown: in plans, drift, backups, messages (credentials in the URL never are)
        self.url = redact_url(str(http.base_url).removesuffix("/").removesuffix("/api"))

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        label: str,
        timeout: float = 30.0,
        key_id: str | None = None,
        key_secret: str | None = None,
        transport: httpx.BaseTransport | None = None,
        retry_attempts: int | None = None,
        retry_base_delay: float | None = None,
        retry_max_delay: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ConductorClient:
        base = url.rstrip("/")
        auth = OrkesAuth(f"{base}/api/token", key_id, key_secret) if key_id and key_secret else None
        http = httpx.Client(
            base_url=f"{base}/api",
            timeout=timeout,
            auth=auth,
            transport=transport,
            headers={"Accept": "application/json"},
            # a plain-HTTP server never uses TLS (redirects are not followed): no need to load
            # the certificate store (a thirtieth of a second before the first request)
            verify=not base.lower().startswith("http://"),
        )
        return cls(
            http,
            label,
            retry_attempts=retry_attempts,
            retry_base_delay=retry_base_delay,
            retry_max_delay=retry_max_delay,
            sleep=sleep,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConductorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------------------------

    def server_version(self) -> str | None:
        """``3.15.0`` from /admin/config on 3.x, or conductor-oss's /version; None when unknown."""
        try:  # retried like any read: a transient failure must not pass for an older server
            response = self._send("GET", "/version").answer
            if response.status_code == 200 and re.match(r"^\d+\.\d+", response.text.strip()):
                return response.text.strip()
            response = self._send("GET", "/admin/config").answer
            if response.status_code == 200:
                version = body_of(response).get("version")
                return str(version) if version else None
        except (ServerError, httpx.HTTPError):
            return None
        return None

    def objects(self, kind: Kind, digest: Digest | None = None) -> list[Json] | None:
        """Every object of ``kind`` on the server, in full; None when the server has no such kind
        (an optional kind whose list answers 404: conductor 3.15 has no schedules). With
        ``digest``: a ``Digested`` list, each object's digest of its JSON text beside it."""
        try:
            return self._list("GET", kind.endpoints.list, digest)
        except ServerError as exc:
            if exc.status == 404 and kind.endpoints.optional:
                return None
            raise

    def newest_workflows(self, digest: Digest | None = None) -> list[Json] | None:
        """The newest version of each workflow definition, in full
        (``GET /metadata/workflow/latest-versions``, 3.15 and conductor-oss); None when the server
        has no such endpoint (404 or 405, or an answer that is not a list: an older server reads
        the path as a workflow's name)."""
        data = self._optional("/metadata/workflow/latest-versions", digest)
        return data if isinstance(data, list) else None

    def workflow_versions(self) -> dict[str, list[int]] | None:
        """Name -> the versions the server holds, without the definitions
        (``GET /metadata/workflow/names-and-versions``); None when the server has no such
        endpoint (as ``newest_workflows``)."""
        data = self._optional("/metadata/workflow/names-and-versions")
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            return None  # a workflow definition by that name (an older server), not the index
        found: dict[str, list[int]] = {}
        for name, entries in data.items():
            versions = [e.get("version") if isinstance(e, dict) else None for e in entries]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in versions):
                raise ServerError(
                    f"GET /api/metadata/workflow/names-and-versions: the versions of {name!r} "
                    "are not integers",
                    hint=f"Is {self.url} a Conductor server? Its answer is not what Conductor sends.",
                )
            found[str(name)] = [int(v) for v in versions if isinstance(v, int)]
        return found

    def _optional(self, path: str, digest: Digest | None = None) -> object:
        """The JSON answer of a read a server may not have; None when it answers 404 or 405."""
        try:
            return self._parsed(path, digest)
        except ServerError as exc:
            if exc.status in (404, 405):
                return None
            raise

    def workflow(self, name: str, version: int | None = None) -> Json | None:
        """One workflow definition (the newest version by default); None when there is none."""
        query = f"?version={version}" if version is not None else ""
        try:
            found = json_of(self._call("GET", f"/metadata/workflow/{_segment(name)}{query}"))
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise
        return found if isinstance(found, dict) else None

    def validate(self, kind: Kind, spec: Json) -> None:
        """The server's own validation of one object of ``kind`` (nothing is written)."""
        if kind.validate is not None:
            self._call("POST", kind.validate, body=spec, idempotent=True)

    # -- writes ---------------------------------------------------------------------------------

    def create(self, kind: Kind, specs: Sequence[Json]) -> None:
        """Create ``specs``: in lists where the kind's endpoints take them (task definitions; new
        workflows in the update's upserting list, once none of them is found on the server),
        else one request each. A list that one object spoils is refused whole by both flavours
        (400, nothing stored): the caller sends its objects one by one to tell which."""
        at = kind.endpoints
        if at.create_batch:
            for chunk in _chunks(specs):
                self._call("POST", at.create, body=chunk, idempotent=at.create_is_upsert)
            return
        if at.create_via_update and len(specs) > 1 and self.lists_creates(kind):
            # the index lists_creates() read serves every list, with what they wrote: read again
            # for each list, it cost more than the lists (10,000 new workflows: 40 lists, and
            # an index of 10,000 names each time)
            held = self._index if self._index is not None else self.workflow_versions()
            if held is None:  # the index was there a moment ago
                raise ServerError(
                    f"GET /api/metadata/workflow/names-and-versions: {self.label} no longer "
                    "answers it: nothing was sent",
                    hint="Apply again.",
                )
            self._none_there(kind, specs, held)
            self._index = None  # a list whose answer is lost may have landed: read again
            self._update_batch(at.update, specs)
            for spec in specs:
                held.setdefault(str(spec.get("name")), []).append(int(spec.get("version") or 1))
            self._index = held
            return
        for spec in specs:
            if at.create_is_upsert:
                self._call("POST", at.create, body=spec, idempotent=True)
            else:
                self._create(at.create, spec, self._read_back_of(kind, spec))

    def lists_creates(self, kind: Kind) -> bool:
        """Can several new objects of ``kind`` go in one request? Task definitions always; new
        workflows where the server has the names-and-versions index that shows none of them is
        there (Orkes documents none: there, one by one). Asked once per client."""
        at = kind.endpoints
        if at.create_batch or not at.create_via_update:
            return at.create_batch
        if self._lists_creates is None:
            self._index = self.workflow_versions()
            self._lists_creates = self._index is not None
        return self._lists_creates

    def update(self, kind: Kind, specs: Sequence[Json]) -> None:
        at = kind.endpoints
        if at.update_batch:
            self._update_batch(at.update, specs)
            return
        for spec in specs:  # an update puts the whole object: safe to send twice
            self._call(at.update_method, at.update, body=spec, idempotent=True)

    def _none_there(self, kind: Kind, specs: Sequence[Json], held: dict[str, list[int]]) -> None:
        """Before new objects go in an upserting list: none of them may be on the server (one
        made since the plan would be overwritten); a 409 naming those that are. ``held``: the
        server's names and versions (``workflow_versions``)."""
        taken = [
            f"{s.get('name')}" + (f" v{s.get('version') or 1}" if kind.versioned else "")
            for s in specs
            if int(s.get("version") or 1) in held.get(str(s.get("name")), ())
        ]
        if taken:
            raise ServerError(
                f"GET /api/metadata/workflow/names-and-versions: {', '.join(taken)} already on "
                f"{self.label}, "
                "made since the plan",
                status=409,
                hint="Plan again.",
            )

    def delete(self, kind: Kind, name: str, version: int | None) -> None:
        self._call("DELETE", _path(kind.endpoints.delete, name, version))

    def _read_back_of(self, kind: Kind, spec: Json) -> _ReadBack:
        """How to tell whether a create of ``spec`` whose answer was lost was carried out."""
        name = str(spec.get("name", ""))
        version = int(spec.get("version") or 1) if kind.versioned else None
        what = f"{kind.name} {name}" + (f" v{version}" if version is not None else "")
        get = kind.endpoints.get

        def read() -> Json | None:
            if get is None:  # no get-by-name (event handlers, reference §1.3): list them all
                listed = self._list("GET", kind.endpoints.list)
                return next((o for o in listed if o.get("name") == name), None)
            params = {"version": version} if version is not None else None
            response = self._send("GET", _path(get, name, version), params=params).answer
            return None if status_of(response) == 404 else self._object(response)

        return _ReadBack(what, read)

    def create_workflow(self, spec: Json) -> None:
        self.create(KINDS["WorkflowDef"], [spec])

    def update_workflows(self, specs: Sequence[Json]) -> None:
        self.update(KINDS["WorkflowDef"], specs)

    def delete_workflow(self, name: str, version: int) -> None:
        self.delete(KINDS["WorkflowDef"], name, version)

    def _update_batch(self, path: str, specs: Sequence[Json]) -> None:
        """PUT lists (at most ``BATCH_BYTES`` of JSON each); the server may store some and not
        others (``bulkErrorResults``)."""
        for chunk in _chunks(specs):
            response = self._call("PUT", path, body=chunk)
            errors = json_of(response).get("bulkErrorResults") or {}
            if errors:
                raise ServerError(
                    f"PUT /api{path}: the server stored some definitions but not "
                    f"{', '.join(sorted(errors))}",
                    details=[
                        Problem(f"{name}: {message}") for name, message in sorted(errors.items())
                    ],
                    hint="Plan again to see what landed.",
                )

    # -- executions -----------------------------------------------------------------------------

    def running_executions(self, name: str, versions: Collection[int]) -> dict[int, list[str]]:
        """IDs of the running (or paused) executions of ``name``, for each of ``versions``.

        The server's ``?version=`` filter is ignored (reference §1.4): list the IDs by name, then
        read each execution's version.
        """
        ids = json_of(self._call("GET", f"/workflow/running/{_segment(name)}"))
        found: dict[int, list[str]] = {v: [] for v in versions}
        for workflow_id in ids if isinstance(ids, list) else ():
            path = f"/workflow/{_segment(str(workflow_id))}?includeTasks=false"
            try:
                execution = json_of(self._call("GET", path))
            except ServerError as exc:
                if exc.status == 404:  # finished and archived meanwhile
                    continue
                raise
            version = execution.get("workflowVersion") if isinstance(execution, dict) else None
            if version in found:
                found[version].append(str(workflow_id))
        return found

    # -- test executions (`metasync test`) ------------------------------------------------------

    def test_workflow(self, request: Json) -> Json:
        """``POST /workflow/test``: start a workflow whose tasks' outputs are mocked by reference
        (system tasks run for real); the execution as it stands when the server stops feeding
        mocks (not always terminal)."""
        found = json_of(self._call("POST", "/workflow/test", body=request))
        if not isinstance(found, dict) or "workflowId" not in found:
            raise ServerError(
                f"{self.label}: POST /api/workflow/test answered without an execution"
            )
        return found

    def start_workflow(self, request: Json) -> str:
        """``POST /workflow``: start an execution; its id. Not retried: a lost answer may have
        started one already."""
        return self._call("POST", "/workflow", body=request, idempotent=False).text.strip()

    def execution(self, workflow_id: str, *, tasks: bool = True) -> Json | None:
        """One execution (with its tasks, unless not ``tasks``); None when the server has none
        by that id."""
        query = f"?includeTasks={'true' if tasks else 'false'}"
        try:
            found = json_of(self._call("GET", f"/workflow/{_segment(workflow_id)}{query}"))
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise
        return found if isinstance(found, dict) else None

    def decide(self, workflow_id: str) -> None:
        """Have the server evaluate an execution now (``PUT /workflow/decide/{id}``); an
        execution that is gone is fine."""
        try:
            self._call("PUT", f"/workflow/decide/{_segment(workflow_id)}")
        except ServerError as exc:
            if exc.status != 404:
                raise

    def reevaluate_task(self, workflow_id: str, task_id: str) -> None:
        """Have the server evaluate a running system task (a JOIN) again now: an IN_PROGRESS
        update with no callback puts its queue message back at the front (both flavours keep a
        system task IN_PROGRESS on such an update: they never restart it). A task or execution
        that has ended meanwhile is fine."""
        body = {"workflowInstanceId": workflow_id, "taskId": task_id, "status": "IN_PROGRESS",
                "callbackAfterSeconds": 0}  # fmt: skip
        try:
            self._call("POST", "/tasks", body=body, idempotent=True)
        except ServerError as exc:
            if exc.status != 404:
                raise

    def correlated(self, name: str, correlation_id: str, *, version: int = 1,
                   since: float | None = None, unlike: set[str] | None = None,
                   tasks: bool = True) -> list[Json]:  # fmt: skip
        """The executions of workflow ``name`` with ``correlation_id``, ended ones included. 3.15
        indexes no correlation id (it finds none that way for a workflow sent inline): there,
        the executions of ``name`` at ``version`` created since ``since`` (epoch seconds, an
        hour's leeway either side for the server's clock) are read one by one: the server lists
        them by name and creation day, running or ended. Without a time it lists its running
        executions only (from a set its unlocked evaluations update apart from the execution
        itself), and a test execution that has ended before its request is answered is in none.
        ``unlike``: ids read before that are another execution's: not read again (a workflow with
        many executions that hour is read once, not on every look); those read now are added.
        ``tasks``: with each execution's tasks."""
        path = (f"/workflow/{_segment(name)}/correlated/{_segment(correlation_id)}"
                f"?includeClosed=true&includeTasks={'true' if tasks else 'false'}")  # fmt: skip
        found = json_of(self._call("GET", path))
        if isinstance(found, list) and found:
            return [e for e in found if isinstance(e, dict)]
        query = ""
        if since is not None:
            start, end = int((since - 3600) * 1000), int((time.time() + 3600) * 1000)
            query = f"?version={version}&startTime={start}&endTime={end}"
        listed = json_of(self._call("GET", f"/workflow/running/{_segment(name)}{query}"))
        skip = unlike if unlike is not None else set()
        ids = [str(i) for i in listed if str(i) not in skip] if isinstance(listed, list) else []
        found = []
        for execution in (self.execution(i, tasks=tasks) for i in ids):
            if execution is None:
                continue
            if execution.get("correlationId") == correlation_id:
                found.append(execution)
            else:
                skip.add(str(execution.get("workflowId")))
        return found

    def remove_execution(self, workflow_id: str, *, running: bool) -> None:
        """Remove an execution for good (terminated first when ``running``); gone already is
        fine."""
        segment = _segment(workflow_id)
        if running:  # 3.15 answers 500 for a sub-workflow whose parent is gone: remove it anyway
            with contextlib.suppress(ServerError):
                self._call("DELETE", f"/workflow/{segment}?reason=metasync+test+cleanup",
                           idempotent=True)  # fmt: skip
        try:
            self._call("DELETE", f"/workflow/{segment}/remove?archiveWorkflow=false",
                       idempotent=True)  # fmt: skip
        except ServerError as exc:
            if exc.status != 404:
                raise


def _chunks(specs: Sequence[Json]) -> list[list[Json]]:
    """``specs`` in lists of at most ``BATCH_BYTES`` of JSON (one object alone may be more)."""
    chunks: list[list[Json]] = []
    size = BATCH_BYTES
    for spec in specs:
        length = len(json.dumps(spec, separators=(",", ":"), default=str))
        if not chunks or size + length > BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(spec)
        size += length + 1
    return chunks


def _path(template: str, name: str, version: int | None) -> str:
    """A kind's endpoint with ``{name}`` (one path segment) and ``{version}`` filled in."""
    return template.format(name=_segment(name), version=version if version is not None else 1)


def _segment(value: str) -> str:
    """One URL path segment (names may hold characters a path gives meaning to)."""
    return quote(value, safe="")
