"""The example project registers on real servers of both flavours, as rendered for every environment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import conductor_server
from helpers import run_cli
from metasync.model.kinds import KINDS

pytestmark = pytest.mark.server


def rendered(root: Path, env: str) -> dict[str, Any]:
    result = run_cli("--project", str(root), "render", "--env", env, "-o", "json")
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def assert_kept(sent: Any, live: Any, path: str = "") -> None:
    """Everything we sent is on the server, value for value (the server may add defaults)."""
    if isinstance(sent, dict):
        assert isinstance(live, dict), path
        for key, value in sent.items():
            assert key in live, f"server dropped {path}.{key}"
            assert_kept(value, live[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(live, list), path
        assert len(sent) == len(live), path
        for i, (a, b) in enumerate(zip(sent, live, strict=True)):
            assert_kept(a, b, f"{path}[{i}]")
    else:
        assert sent == live, path


def test_every_example_resource_registers_and_reads_back(
    conductor: conductor_server.Server, example_repo: Path
) -> None:
    """dev is created with POST; qa and prod then update the same names with PUT."""
    api = httpx.Client(base_url=f"{conductor.url}/api", timeout=30)
    for step, env in enumerate(("dev", "qa", "prod")):
        resources = rendered(example_repo, env)["resources"]
        by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for resource in resources:
            by_kind[resource["kind"]].append(resource["spec"])
        assert len(by_kind["TaskDef"]) >= 6
        assert len(by_kind["WorkflowDef"]) >= 4
        assert len(by_kind["EventHandler"]) >= 1

        if step == 0:
            response = api.post("/metadata/taskdefs", json=by_kind["TaskDef"])
            assert response.status_code == 200, response.text
            for spec in by_kind["WorkflowDef"]:
                response = api.post("/metadata/workflow", json=spec)
                assert response.status_code == 200, f"{spec['name']}: {response.text}"
            for spec in by_kind["EventHandler"]:
                response = api.post("/event", json=spec)
                assert response.status_code == 200, f"{spec['name']}: {response.text}"
        else:
            for spec in by_kind["TaskDef"]:
                response = api.put("/metadata/taskdefs", json=spec)
                assert response.status_code == 200, f"{spec['name']}: {response.text}"
            response = api.put("/metadata/workflow", json=by_kind["WorkflowDef"])
            assert response.status_code == 200, response.text
            assert response.json()["bulkErrorResults"] == {}
            for spec in by_kind["EventHandler"]:
                response = api.put("/event", json=spec)
                assert response.status_code == 200, f"{spec['name']}: {response.text}"

        for spec in by_kind["TaskDef"]:
            live = api.get(f"/metadata/taskdefs/{spec['name']}").json()
            assert_kept(spec, live, spec["name"])
            KINDS["TaskDef"].model.model_validate(live)  # the strict model knows every field
        for spec in by_kind["WorkflowDef"]:
            live = api.get(
                f"/metadata/workflow/{spec['name']}", params={"version": spec["version"]}
            ).json()
            assert_kept(spec, live, spec["name"])
            KINDS["WorkflowDef"].model.model_validate(live)
        handlers = {h["name"]: h for h in api.get("/event").json()}
        for spec in by_kind["EventHandler"]:
            assert_kept(spec, handlers[spec["name"]], spec["name"])
            KINDS["EventHandler"].model.model_validate(handlers[spec["name"]])

    # the environments really differ: prod's values are what the server holds now
    charge = api.get("/metadata/taskdefs/charge_payment").json()
    assert charge["retryCount"] == 5
    assert charge["ownerEmail"] == "payments-prod@example.com"
