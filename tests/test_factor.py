"""Overlays computed between two definitions (export, drift --adopt), checked by applying them."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from metasync.adopt.factor import overlay, with_vars
from metasync.manifests.overlays import merge_resource


def task(ref: str, **fields: Any) -> dict[str, Any]:
    return {"name": ref, "taskReferenceName": ref, **fields}


BASE: dict[str, Any] = {
    "name": "wf", "version": 1, "ownerEmail": "a@example.com",
    "tasks": [task("a"), task("route", type="SWITCH", evaluatorType="value-param",
                              expression="x", decisionCases={"x": [task("b")]}), task("c")],
}  # fmt: skip


def applied(body: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    merge_resource("WorkflowDef", spec, body.get("patch", {}))
    result: dict[str, Any] = jsonpatch.apply_patch(spec, body.get("jsonPatch", []))
    return result


def test_a_nested_field_and_new_tasks_are_said_by_reference() -> None:
    target: dict[str, Any] = copy.deepcopy(BASE)
    target["tasks"][1]["decisionCases"]["x"][0]["inputParameters"] = {"n": 1}
    target["tasks"].insert(0, task("first"))  # nothing before it: placed before "a"
    target["tasks"].append(task("last"))
    body = overlay("WorkflowDef", BASE, target)
    assert body == {"patch": {"tasks": [
        {**task("first"), "$before": "a"},  # in the order of the definition
        {"taskReferenceName": "b", "inputParameters": {"n": 1}},
        {**task("last"), "$after": "c"},
    ]}}  # fmt: skip
    assert applied(body) == target


def test_new_tasks_in_a_row_keep_their_order() -> None:
    target = copy.deepcopy(BASE)
    target["tasks"][1:1] = [task("x"), task("y")]  # both after "a"
    body = overlay("WorkflowDef", BASE, target)
    assert body == {
        "patch": {"tasks": [{**task("x"), "$after": "a"}, {**task("y"), "$after": "x"}]}
    }
    assert applied(body) == target


def test_a_deleted_task_and_a_removed_field() -> None:
    target = copy.deepcopy(BASE)
    del target["tasks"][2]
    del target["ownerEmail"]
    body = overlay("WorkflowDef", BASE, target)
    assert body == {
        "patch": {"ownerEmail": None, "tasks": [{"taskReferenceName": "c", "$patch": "delete"}]}
    }
    assert applied(body) == target


def test_a_new_order_is_said_with_json_patch() -> None:
    target = copy.deepcopy(BASE)
    target["tasks"] = [target["tasks"][2], target["tasks"][0], target["tasks"][1]]
    body = overlay("WorkflowDef", BASE, target)
    assert body["jsonPatch"] == [{"op": "replace", "path": "/tasks", "value": target["tasks"]}]
    assert applied(body) == target


def test_the_same_definition_needs_no_overlay() -> None:
    explicit = {**copy.deepcopy(BASE), "schemaVersion": 2, "restartable": True}  # defaults
    assert overlay("WorkflowDef", BASE, explicit) == {}


def test_variables_go_into_the_vars_block_and_nowhere_else() -> None:
    text = "server:\n  url: http://x\nvars:\n  a: 1 # kept\n  url: old\npolicy:\n  prune: false\n"
    assert with_vars(text, {"url": "new", "b": "x"}) == (
        'server:\n  url: http://x\nvars:\n  b: "x"\n  a: 1 # kept\n  url: "new"\n'
        "policy:\n  prune: false\n"
    )
    assert with_vars("server:\n  url: http://x\n", {"b": 2}) == (
        "server:\n  url: http://x\nvars:\n  b: 2\n"
    )
    assert with_vars("vars: {a: 1}\n", {"b": 2}) == "vars:\n  a: 1\n  b: 2\n"
