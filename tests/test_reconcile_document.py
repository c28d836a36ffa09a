"""A reconcile's status matrix from its environments' outputs, and an environment's document
abridged to its share of the run's output (Conductor's payload limits), without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from metasync.render.reconcile import reconcile_document, reconcile_message
from metasync.worker.tasks import ENVIRONMENT_BUDGET_MIN, abridge


def drifted(env: str, count: int, kind: str = "missing-live", value: str = "x" * 200) -> dict[str, Any]:  # fmt: skip
    """A drift task's document of ``env`` with ``count`` drifted workflows."""
    return {
        "formatVersion": 1,
        "commit": "c" * 40,
        "environment": env,
        "environments": [{
            "environment": env, "server": f"http://{env}:8080", "inSync": count == 0,
            "error": None, "ignored": [],
            "drift": [
                {"kind": "WorkflowDef", "name": f"flow_{n:04d}", "version": 1, "type": kind,
                 "fields": [{"path": "description", "before": None, "after": value}],
                 "lastWrite": None}
                for n in range(count)
            ],
        }],
    }  # fmt: skip


def size(document: dict[str, Any]) -> int:
    return len(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode())


def test_a_document_within_its_budget_is_left_whole() -> None:
    document = drifted("dev", 3)
    assert abridge(json.loads(json.dumps(document)), size(document)) == document
    assert abridge(json.loads(json.dumps(document)), None) == document


@pytest.mark.parametrize(("count", "left_out"), [
    (150, {"fieldValues"}),                       # the values go, the paths stay
    (300, {"fieldValues", "fields"}),            # then the fields
    (5000, {"fieldValues", "fields", "objects"}),  # then objects from the end
])  # fmt: skip
def test_an_abridged_document_fits_and_still_counts_every_object(
    count: int, left_out: set[str]
) -> None:
    budget = 30_000
    document = abridge(drifted("dev", count), budget)
    assert size(document) <= budget
    (report,) = document["environments"]
    assert report["counts"]["missing-live"] == count
    said = document["abridged"]
    assert {k for k in said if k not in {"why", "full"}} == left_out
    assert "metasync drift --env dev -o json" in said["full"]
    if "objects" in left_out:
        assert len(report["drift"]) + said["objects"] == count
        assert report["drift"][0]["name"] == "flow_0000"  # the first ones kept
    else:
        assert len(report["drift"]) == count
    if left_out == {"fieldValues"}:
        assert report["drift"][0]["fields"] == [{"path": "description"}]


def test_the_matrix_counts_an_abridged_environment_in_full_and_its_cells_are_sparse() -> None:
    big = abridge(drifted("prod", 5000), 20_000)
    results = {
        "drift_dev": drifted("dev", 0),
        "drift_prod": big,
        "sync_qa": {**drifted("qa", 1), "autoSync": True, "applied": {
            "ok": True, "landed": 1, "outcomes": [
                {"kind": "WorkflowDef", "name": "flow_0000", "version": 1, "action": "create",
                 "result": "landed", "problems": []}]}},
        "drift_broken": {"error": {"message": "cannot fetch the repository", "hint": None}},
    }  # fmt: skip
    names = ["dev", "prod", "qa", "broken", "absent"]
    document = reconcile_document("https://git.example.com/fleet.git", "c" * 40, names, results)
    states = {c["environment"]: c for c in document["environments"]}
    assert [states[n]["state"] for n in names] == ["in-sync", "drifted", "applied", "failed", "failed"]  # fmt: skip
    assert states["prod"]["counts"]["missing-live"] == 5000
    assert states["prod"]["abridged"] is True
    assert states["broken"]["error"] == "cannot fetch the repository"
    assert "no result" in states["absent"]["error"]
    assert document["summary"] == {"in-sync": 1, "applied": 1, "drifted": 1, "failed": 2}
    first = document["resources"][0]
    assert first["name"] == "flow_0000"
    assert first["cells"] == {"prod": {"drift": "missing-live", "applied": None},
                              "qa": {"drift": "missing-live", "applied": "landed"}}  # fmt: skip
    # an environment's own webhook hears of it alone
    message = reconcile_message(document, "qa")
    assert [c["environment"] for c in message["metasync"]["environments"]] == ["qa"]
    assert all(set(r["cells"]) == {"qa"} for r in message["metasync"]["resources"])
    assert message["text"].startswith("metasync reconcile of https://git.example.com/fleet.git")
    assert "1 applied (1 environment(s))" in message["text"]


def test_a_budget_below_the_least_share_is_raised_to_it() -> None:
    assert ENVIRONMENT_BUDGET_MIN == 2_048
    document = abridge(drifted("dev", 100), ENVIRONMENT_BUDGET_MIN)
    assert size(document) <= ENVIRONMENT_BUDGET_MIN
