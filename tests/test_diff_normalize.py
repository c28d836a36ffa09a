"""Normalisation and the structural diff: pure data, no server."""

from __future__ import annotations

from typing import Any

from metasync.conductor.normalize import Unknown, flavour_of, normalize
from metasync.model.fingerprint import fingerprint
from metasync.plan.diff import diff
from metasync.plan.model import FieldChange


def task(ref: str, **extra: Any) -> dict[str, Any]:
    return {"name": ref, "taskReferenceName": ref, **extra}


def workflow(tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": "wf", "version": 1, "ownerEmail": "a@example.com", "tasks": tasks, **extra}


def canonical(spec: dict[str, Any], kind: str = "WorkflowDef") -> dict[str, Any]:
    return normalize(kind, spec, "3.15")


def test_explicit_defaults_equal_omitted_ones() -> None:
    explicit = workflow(
        [task("a", type="SIMPLE", optional=False, startDelay=0, inputParameters={}, loopOver=[])],
        schemaVersion=2,
        restartable=True,
        timeoutPolicy="ALERT_ONLY",
        inputParameters=[],
        variables={},
    )
    assert canonical(explicit) == canonical(workflow([task("a")]))
    assert fingerprint(canonical(explicit)) == fingerprint(canonical(workflow([task("a")])))


def test_what_the_server_writes_is_ignored() -> None:
    live = workflow(
        [task("a")], createTime=1, updateTime=2, ownerApp="x", accessPolicy={}, updatedBy=""
    )
    assert canonical(live) == canonical(workflow([task("a")]))


def test_free_form_maps_keep_nulls_and_empty_values() -> None:
    spec = workflow([task("a", inputParameters={"x": None, "y": {}, "z": []})])
    assert canonical(spec)["tasks"][0]["inputParameters"] == {"x": None, "y": {}, "z": []}


def test_oss_fields_are_reported_for_315_and_kept_for_oss() -> None:
    spec = workflow([task("a", permissive=True)], enforceSchema=False, maskedFields=["card"])
    unknown: list[Unknown] = []
    assert "maskedFields" not in normalize("WorkflowDef", spec, "3.15", unknown)
    assert unknown == [
        Unknown(("tasks", 0), "permissive"),
        Unknown((), "enforceSchema"),
        Unknown((), "maskedFields"),
    ]
    oss = normalize("WorkflowDef", spec, "oss")
    assert oss["maskedFields"] == ["card"]
    assert oss["enforceSchema"] is False
    assert oss["tasks"][0]["permissive"] is True


def test_flavour_from_version() -> None:
    assert [flavour_of(v) for v in (None, "3.15.0", "3.20.9", "3.21.0", "3.32.1", "4.0.0-rc1")] == [
        "3.15", "3.15", "3.15", "oss", "oss", "oss",
    ]  # fmt: skip


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    return diff("WorkflowDef", canonical(before), canonical(after))


LOOP = task("loop", type="DO_WHILE", loopCondition="false", loopOver=[task("pick"), task("check")])
FORK = task("fork", type="FORK_JOIN", forkTasks=[[LOOP], [task("book")]])


def test_a_nested_field_is_addressed_by_reference() -> None:
    edited = task("fork", type="FORK_JOIN", forkTasks=[
        [task("loop", type="DO_WHILE", loopCondition="false", loopOver=[task("pick", optional=True), task("check")])],
        [task("book")],
    ])  # fmt: skip
    assert changes(workflow([FORK]), workflow([edited])) == [
        FieldChange("tasks[ref=pick].optional", False, True)
    ]


def test_an_inserted_task_is_one_entry_and_later_tasks_do_not_move() -> None:
    before = workflow([task("a"), task("b"), task("c")])
    after = workflow([task("a"), task("new"), task("b"), task("c")])
    (change,) = changes(before, after)
    assert change.path == "tasks[ref=new]"
    assert change.before is None
    assert change.after["taskReferenceName"] == "new"


def test_a_removed_subtree_is_one_entry() -> None:
    (change,) = changes(workflow([task("a"), FORK]), workflow([task("a")]))
    assert change.path == "tasks[ref=fork]"
    assert change.after is None
    assert change.before["forkTasks"][0][0]["taskReferenceName"] == "loop"


def test_a_change_of_order_is_reported_as_such() -> None:
    assert changes(workflow([task("a"), task("b")]), workflow([task("b"), task("a")])) == [
        FieldChange("tasks", ["a", "b"], ["b", "a"])
    ]
    reordered_loop = task(
        "loop", type="DO_WHILE", loopCondition="false", loopOver=[task("check"), task("pick")]
    )
    assert changes(workflow([LOOP]), workflow([reordered_loop])) == [
        FieldChange("tasks[ref=loop].loopOver", ["pick", "check"], ["check", "pick"])
    ]


def test_a_task_moved_between_branches() -> None:
    before = workflow(
        [task("f", type="FORK_JOIN", forkTasks=[[task("x"), task("y")], [task("z")]])]
    )
    after = workflow([task("f", type="FORK_JOIN", forkTasks=[[task("x")], [task("y"), task("z")]])])
    assert changes(before, after) == [
        FieldChange("tasks[ref=f].forkTasks[0]", ["x", "y"], ["x"]),
        FieldChange("tasks[ref=f].forkTasks[1]", ["z"], ["y", "z"]),
    ]


def test_switch_cases_and_plain_lists() -> None:
    switch = task("s", type="SWITCH", evaluatorType="value-param", expression="v",
                  decisionCases={"a": [task("x")]}, defaultCase=[task("d")])  # fmt: skip
    edited = task("s", type="SWITCH", evaluatorType="value-param", expression="w",
                  decisionCases={"a": [task("x", retryCount=2)], "b": [task("y")]},
                  defaultCase=[task("d")])  # fmt: skip
    assert changes(
        workflow([switch], inputParameters=["a"]), workflow([edited], inputParameters=["a", "b"])
    ) == [
        FieldChange("inputParameters", ["a"], ["a", "b"]),
        FieldChange("tasks[ref=y]", None, canonical(workflow([task("y")]))["tasks"][0]),
        FieldChange("tasks[ref=s].expression", "v", "w"),
        FieldChange("tasks[ref=x].retryCount", None, 2),
    ]


def test_task_definition_fields() -> None:
    before = normalize("TaskDef", {"name": "t", "retryCount": 3, "inputTemplate": {"a": 1}}, "3.15")
    after = normalize(
        "TaskDef", {"name": "t", "retryCount": 5, "inputTemplate": {"a": 2, "b": 1}}, "3.15"
    )
    assert diff("TaskDef", before, after) == [
        FieldChange("retryCount", 3, 5),
        FieldChange("inputTemplate.a", 1, 2),
        FieldChange("inputTemplate.b", None, 1),
    ]
