"""History-proof reads against real servers of both flavours: a plan reads each workflow's newest
version (``latest-versions``) and only the older versions it needs, and plans exactly as a read of
every version does; a server without those endpoints is read whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import conductor_server
from faultproxy import Fault, FaultProxy
from helpers import run_cli, write_project
from metasync.conductor import live as live_module
from metasync.conductor.normalize import normalize
from metasync.operations import plan as plan_module
from metasync.plan import memo as memo_module
from metasync.plan import planner as planner_module
from metasync.plan.select import parse_selectors
from metasync.project import Project
from metasync.render.plan_json import plan_document

pytestmark = pytest.mark.server

FULL_LIST = ("GET", "/api/metadata/workflow")
LATEST = ("GET", "/api/metadata/workflow/latest-versions")
INDEX = ("GET", "/api/metadata/workflow/names-and-versions")

ENVIRONMENT = """\
server:
  url: {url}
policy:
  versioning: {versioning}
  prune: {prune}
  maxDeletes: 50
"""

TASKDEF = """\
apiVersion: metasync/v1
kind: TaskDef
metadata: {{name: {name}}}
spec: {{ownerEmail: team@example.com, retryCount: 2}}
"""

WORKFLOW = """\
apiVersion: metasync/v1
kind: WorkflowDef
metadata: {{name: {name}}}
spec:
  version: 1
  ownerEmail: team@example.com
  description: {description}
  tasks:
    - {{name: {task}, taskReferenceName: work, type: SIMPLE}}
"""


def project(root: Path, prefix: str, url: str, versioning: str = "new-version",
            prune: bool = True) -> Path:  # fmt: skip
    """Task defs a and b; workflow main on b, workflow gone on a."""
    return write_project(root, {
        "manifests/a.yaml": TASKDEF.format(name=f"{prefix}a"),
        "manifests/b.yaml": TASKDEF.format(name=f"{prefix}b"),
        "manifests/main.yaml": WORKFLOW.format(name=f"{prefix}main", description="first",
                                               task=f"{prefix}b"),
        "manifests/gone.yaml": WORKFLOW.format(name=f"{prefix}gone", description="first",
                                               task=f"{prefix}a"),
    }, ENVIRONMENT.format(url=url, versioning=versioning, prune=str(prune).lower()))  # fmt: skip


def apply(root: Path) -> str:
    result = run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def hand_made(api: httpx.Client, name: str, version: int) -> None:
    response = api.post("/metadata/workflow", json={
        "name": name, "version": version, "ownerEmail": "ui@example.com",
        "tasks": [{"name": "x", "taskReferenceName": "x", "type": "WAIT"}],
    })  # fmt: skip
    assert response.status_code == 200, response.text


def with_history(root: Path, prefix: str, api: httpx.Client) -> None:
    """main v1 (on b) and v2 (on a), gone v1 and v2 (metasync's), foreign v1 to v3 (by hand)."""
    apply(root)
    edit(root / "manifests/main.yaml", f"name: {prefix}b,", f"name: {prefix}a,")
    edit(root / "manifests/gone.yaml", "description: first", "description: second")
    assert "2 of 2 change(s) landed." in apply(root)
    for version in (1, 2, 3):
        hand_made(api, f"{prefix}foreign", version)


def planned(root: Path, url: str, prefix: str, monkeypatch: pytest.MonkeyPatch, *,
            whole: bool = False) -> dict[str, Any]:  # fmt: skip
    """The plan (JSON) of the project's own objects through the server at ``url``; ``whole``:
    reading every version, as before (the reference)."""
    environment = root / "environments/dev/environment.yaml"
    text = environment.read_text()
    environment.write_text("server:\n  url: " + url + "\n" + text.split("\n", 2)[2])
    with monkeypatch.context() as patch:
        if whole:
            patch.setattr(plan_module, "_older_needed", lambda *_: None)
        selectors = parse_selectors([f"name={prefix}*"])
        document = plan_document(plan_module.plan(Project(root), "dev", selectors).plan)
    environment.write_text(text)
    assert document.pop("server") == url
    return document


def pending(document: dict[str, Any]) -> dict[tuple[str, int | None], dict[str, Any]]:
    return {(c["name"], c["version"]): c for c in document["changes"] if c["action"] != "noop"}


def test_a_plan_reads_the_newest_versions_and_only_the_older_ones_it_lists(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    root = project(tmp_path / "p", prefix, conductor.url)
    with_history(root, prefix, api)
    reference = planned(root, conductor.url, prefix, monkeypatch, whole=True)
    with FaultProxy(conductor.url) as proxy:
        document = planned(root, proxy.url, prefix, monkeypatch)
        assert proxy.seen(*FULL_LIST) == []  # no read of every version
        assert proxy.seen(*LATEST) == ["pass"]
        assert proxy.seen(*INDEX) == ["pass"]
        # the foreign workflow's older versions are listed: read one by one; main's are history
        older = sorted(s.query for s in proxy.log if s.path == f"/api/metadata/workflow/{prefix}foreign")  # fmt: skip
        assert older == ["version=1", "version=2"]
        assert not [s for s in proxy.log if s.path == f"/api/metadata/workflow/{prefix}main"]
    assert document == reference
    assert pending(document) == {}
    unmanaged = [(u["name"], u["version"]) for u in document["unmanaged"]]
    assert unmanaged == [(f"{prefix}foreign", v) for v in (1, 2, 3)]


def test_prune_is_judged_against_every_version_as_before(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    root = project(tmp_path / "p", prefix, conductor.url)
    with_history(root, prefix, api)
    (root / "manifests/gone.yaml").unlink()
    (root / "manifests/b.yaml").unlink()
    reference = planned(root, conductor.url, prefix, monkeypatch, whole=True)
    with FaultProxy(conductor.url) as proxy:
        document = planned(root, proxy.url, prefix, monkeypatch)
        assert proxy.seen(*FULL_LIST) == ["pass"]  # deletes planned: every version read
    assert document == reference
    changes = pending(document)
    assert {key: c["action"] for key, c in changes.items()} == {
        (f"{prefix}b", None): "delete", (f"{prefix}gone", 1): "delete",
        (f"{prefix}gone", 2): "delete",
    }  # fmt: skip
    # main's older version, history the newest-only read leaves out, still uses b
    assert changes[(f"{prefix}b", None)]["blocked"] == (
        f"still used by WorkflowDef {prefix}main v1: not deleted without --force"
    )
    result = run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert result.exit_code == 1  # b is kept
    assert "2 of 3 change(s) landed." in result.stdout  # the read-back finds both versions gone
    versions = {w["name"]: w["version"] for w in api.get("/metadata/workflow").json()}
    assert f"{prefix}gone" not in versions


ABSENT = [(LATEST, "404"), (LATEST, "405"), (INDEX, "404"), (INDEX, "405")]


@pytest.mark.parametrize("absent", ABSENT, ids=[f"{e[1].rsplit('/', 1)[1]}-{f}" for e, f in ABSENT])
def test_a_server_without_the_lean_endpoints_is_read_whole(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, *, api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch, absent: tuple[tuple[str, str], Fault],
) -> None:  # fmt: skip
    endpoint, fault = absent
    root = project(tmp_path / "p", prefix, conductor.url)
    with_history(root, prefix, api)
    reference = planned(root, conductor.url, prefix, monkeypatch, whole=True)
    with FaultProxy(conductor.url, first={" ".join(endpoint): [fault] * 5}) as proxy:
        document = planned(root, proxy.url, prefix, monkeypatch)
        assert proxy.seen(*endpoint) == [fault]  # asked once: no retry of an absent endpoint
        assert proxy.seen(*FULL_LIST) == ["pass"]
    assert document == reference


def test_many_older_versions_are_read_with_one_list_not_one_request_each(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    root = project(tmp_path / "p", prefix, conductor.url)
    with_history(root, prefix, api)
    reference = planned(root, conductor.url, prefix, monkeypatch, whole=True)
    monkeypatch.setattr(live_module, "ONE_BY_ONE_MAX", 1)
    with FaultProxy(conductor.url) as proxy:
        document = planned(root, proxy.url, prefix, monkeypatch)
        assert proxy.seen(*FULL_LIST) == ["pass"]
        assert not [s for s in proxy.log if s.path == f"/api/metadata/workflow/{prefix}foreign"]
    assert document == reference


def test_in_place_an_older_version_git_holds_is_read_back_after_apply(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    """The read-back after apply reads what was written, at its version, though it is not the
    newest: the update lands and nothing is reported as drifted."""
    root = project(tmp_path / "p", prefix, conductor.url, versioning="in-place")
    apply(root)
    hand_made(api, f"{prefix}main", 2)  # a newer version, made by hand
    edit(root / "manifests/main.yaml", "description: first", "description: changed")
    with FaultProxy(conductor.url) as proxy:
        edit(root / "environments/dev/environment.yaml", conductor.url, proxy.url)
        out = apply(root)
        reads = [s.query for s in proxy.log
                 if s.method == "GET" and s.path == f"/api/metadata/workflow/{prefix}main"]  # fmt: skip
        # the plan (prune on) reads every version; the read-back asks for exactly what it
        # wrote: the index of names and versions is read by neither
        assert proxy.seen(*FULL_LIST) == ["pass"]
        assert proxy.seen(*INDEX) == []
    assert "1 of 1 change(s) landed." in out, out
    assert "read-back" not in out, out
    assert "version=1" in reads
    response = api.get(f"/metadata/workflow/{prefix}main", params={"version": 1})
    assert json.loads(response.text)["description"] == "changed"


def test_in_place_a_plan_reads_the_newest_versions_and_those_git_holds_not_the_history(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """In place without prune, a plan reads latest-versions and the version git holds though it
    is not the newest, by name and version, and neither the index nor any other older version
    (ten versions of each workflow no longer read ten times the data; on 3.15 the index costs
    what the whole list does): older versions are history, not listed. Drift, an audit, reads
    and lists them all; with prune on, a plan reads every version again."""
    root = project(tmp_path / "p", prefix, conductor.url, versioning="in-place", prune=False)
    apply(root)  # main v1, gone v1
    edit(root / "manifests/main.yaml", "version: 1", "version: 2")
    apply(root)  # main v2; v1 stays, metasync's
    hand_made(api, f"{prefix}main", 3)  # newer than git's, by hand
    for version in (1, 2):
        hand_made(api, f"{prefix}foreign", version)
    reference = planned(root, conductor.url, prefix, monkeypatch, whole=True)
    with FaultProxy(conductor.url) as proxy:
        document = planned(root, proxy.url, prefix, monkeypatch)
        assert proxy.seen(*FULL_LIST) == []
        assert proxy.seen(*INDEX) == []
        assert proxy.seen(*LATEST) == ["pass"]
        reads = {name: sorted(s.query for s in proxy.log if s.path == f"/api/metadata/workflow/{prefix}{name}")
                 for name in ("main", "foreign")}  # fmt: skip
    assert reads == {"main": ["version=2"], "foreign": []}
    assert pending(document) == {}  # git's v2 is read: nothing to change
    newest = [(f"{prefix}foreign", 2), (f"{prefix}main", 3)]
    assert [(u["name"], u["version"]) for u in document["unmanaged"]] == newest
    # the whole read lists the history too (main v1 metasync's); the rest is the same
    history = {(f"{prefix}foreign", 1): False, (f"{prefix}main", 1): True}
    assert {(u["name"], u["version"]): u["managedByMetasync"] for u in reference["unmanaged"]} == {
        **{key: False for key in newest},
        **history,
    }
    assert {**document, "unmanaged": []} == {**reference, "unmanaged": []}
    environment = root / "environments/dev/environment.yaml"
    with FaultProxy(conductor.url) as proxy:
        edit(environment, conductor.url, proxy.url)
        result = run_cli("--project", str(root), "drift", "--env", "dev", "--select",
                         f"name={prefix}*", "-o", "json")  # fmt: skip
        assert proxy.seen(*FULL_LIST) == ["pass"]
        drift = json.loads(result.stdout)["environments"][0]["drift"]
        assert [(d["name"], d["version"], d["managedByMetasync"]) for d in drift] == [
            (f"{prefix}foreign", 1, False), (f"{prefix}foreign", 2, False),
            (f"{prefix}main", 1, True), (f"{prefix}main", 3, False),
        ]  # fmt: skip
        proxy.log.clear()
        edit(environment, "prune: false", "prune: true")
        result = run_cli("--project", str(root), "plan", "--env", "dev", "--select",
                         f"name={prefix}*", "-o", "json")  # fmt: skip
        assert proxy.seen(*FULL_LIST) == ["pass"]
    deletes = [(c["name"], c["version"]) for c in json.loads(result.stdout)["changes"]
               if c["action"] == "delete"]  # fmt: skip
    assert deletes == [(f"{prefix}main", 1)]


def test_under_new_version_an_unchanged_workflow_is_known_from_the_memo(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Policy new-version asks whether git's content is the newest version's; a plan that finds
    nothing changed since the last one knows it from the fingerprint memo, without normalizing
    the workflows again (2,000 workflows: 2 s of a 0.8 s plan, before)."""
    root = project(tmp_path / "p", prefix, conductor.url)
    with_history(root, prefix, api)
    first = planned(root, conductor.url, prefix, monkeypatch)
    seen: list[str] = []
    real = normalize

    def counted(kind: str, spec: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(f"{kind} {spec.get('name')} v{spec.get('version')}")
        return real(kind, spec, *args, **kwargs)

    monkeypatch.setattr(planner_module, "normalize", counted)
    monkeypatch.setattr(memo_module, "normalize", counted)
    again = planned(root, conductor.url, prefix, monkeypatch)
    assert again == first
    assert pending(again) == {}
    assert [s for s in seen if s.startswith("WorkflowDef")] == []
