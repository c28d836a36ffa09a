"""Text, JSON and Markdown plans, exactly, on a fixed plan."""

from __future__ import annotations

import io
import json
from dataclasses import replace

from metasync.errors import Problem
from metasync.plan.model import Change, FieldChange, Outcome, Plan, Unmanaged
from metasync.render.apply_result import write_apply_result
from metasync.render.plan_json import write_plan_json
from metasync.render.plan_markdown import render_plan_markdown
from metasync.render.plan_text import write_plan_text

PLAN = Plan(
    environment="qa",
    server="http://127.0.0.1:18082",
    flavour="3.15",
    changes=(
        Change(
            "TaskDef", "charge_payment", None, "update",
            (FieldChange("retryCount", 3, 5),),
            "sha256:aaaa", "sha256:bbbb", "1 field(s) differ",
        ),
        Change(
            "TaskDef", "refund_payment", None, "create",
            (FieldChange("name", None, "refund_payment"), FieldChange("retryCount", None, 2)),
            None, "sha256:cccc", "not on the server",
        ),
        Change(
            "WorkflowDef", "order_fulfillment", 1, "update",
            (
                FieldChange("tasks[ref=pick].optional", True, False),
                FieldChange("tasks[ref=audit]", None, {"name": "audit", "taskReferenceName": "audit"}),
                FieldChange("tasks[ref=old]", {"name": "old", "taskReferenceName": "old"}, None),
                FieldChange("tasks", ["a", "b"], ["b", "a"]),
            ),
            "sha256:dddd", "sha256:eeee", "4 field(s) differ",
        ),
        Change("EventHandler", "on_order_shipped", None, "noop", (), "sha256:ffff", "sha256:ffff"),
    ),
    unmanaged=(Unmanaged("WorkflowDef", "made_in_the_ui", 3),),
)  # fmt: skip


def test_text() -> None:
    out = io.StringIO()
    write_plan_text(out, PLAN, color=False)
    assert out.getvalue() == (
        "Plan for qa: http://127.0.0.1:18082, Conductor 3.15\n"
        "\n"
        "~ TaskDef charge_payment  (update, 1 field(s))\n"
        "    ~ retryCount: 3 -> 5\n"
        "\n"
        "+ TaskDef refund_payment  (create)\n"
        '    + name: "refund_payment"\n'
        "    + retryCount: 2\n"
        "\n"
        "~ WorkflowDef order_fulfillment v1  (update, 4 field(s))\n"
        "    ~ tasks[ref=pick].optional: true -> false\n"
        "    + tasks[ref=audit] (SIMPLE):\n"
        '    +   name: "audit"\n'
        "    - tasks[ref=old] (SIMPLE):\n"
        '    -   name: "old"\n'
        '    ~ tasks (order): ["a", "b"] -> ["b", "a"]\n'
        "\n"
        "On the server but not in git, left alone (1):\n"
        "  WorkflowDef (1): made_in_the_ui v3\n"
        "\n"
        "Plan: 1 to create, 2 to update, 0 to delete, 1 unchanged.\n"
    )


def test_text_is_coloured_on_a_terminal() -> None:
    out = io.StringIO()
    write_plan_text(out, PLAN, color=True)
    assert "\x1b[32m+ \x1b[0m" in out.getvalue()  # green +
    assert "\x1b[33m~ \x1b[0m" in out.getvalue()  # yellow ~


def test_the_plan_says_which_project_name_marks_and_locks() -> None:
    named = replace(PLAN, project=("acme-orders", "the git remote"))
    out = io.StringIO()
    write_plan_text(out, named, color=False)
    assert out.getvalue().startswith(
        "Plan for qa: http://127.0.0.1:18082, Conductor 3.15; project acme-orders (from the git "
        "remote)\n"
    )
    out = io.StringIO()
    write_plan_json(out, named)
    assert json.loads(out.getvalue())["project"] == {
        "name": "acme-orders",
        "from": "the git remote",
    }
    markdown = render_plan_markdown(named)
    assert "(Conductor 3.15), project `acme-orders` (from the git remote)\n" in markdown


def test_json() -> None:
    out = io.StringIO()
    write_plan_json(out, PLAN)
    document = json.loads(out.getvalue())
    assert document == {
        "formatVersion": 1,
        "environment": "qa",
        "server": "http://127.0.0.1:18082",
        "flavour": "3.15",
        "project": None,
        "changes": [
            {
                "kind": "TaskDef", "name": "charge_payment", "version": None, "action": "update",
                "fields": [{"path": "retryCount", "before": 3, "after": 5}],
                "liveFingerprint": "sha256:aaaa", "desiredFingerprint": "sha256:bbbb",
                "reason": "1 field(s) differ", "blocked": None, "previousVersion": None, "note": None,
            },
            {
                "kind": "TaskDef", "name": "refund_payment", "version": None, "action": "create",
                "fields": [
                    {"path": "name", "before": None, "after": "refund_payment"},
                    {"path": "retryCount", "before": None, "after": 2},
                ],
                "liveFingerprint": None, "desiredFingerprint": "sha256:cccc",
                "reason": "not on the server", "blocked": None, "previousVersion": None, "note": None,
            },
            {
                "kind": "WorkflowDef", "name": "order_fulfillment", "version": 1, "action": "update",
                "fields": [
                    {"path": "tasks[ref=pick].optional", "before": True, "after": False},
                    {"path": "tasks[ref=audit]", "before": None,
                     "after": {"name": "audit", "taskReferenceName": "audit"}},
                    {"path": "tasks[ref=old]",
                     "before": {"name": "old", "taskReferenceName": "old"}, "after": None},
                    {"path": "tasks", "before": ["a", "b"], "after": ["b", "a"]},
                ],
                "liveFingerprint": "sha256:dddd", "desiredFingerprint": "sha256:eeee",
                "reason": "4 field(s) differ", "blocked": None, "previousVersion": None, "note": None,
            },
            {
                "kind": "EventHandler", "name": "on_order_shipped", "version": None,
                "action": "noop", "fields": [],
                "liveFingerprint": "sha256:ffff", "desiredFingerprint": "sha256:ffff", "reason": "",
                "blocked": None, "previousVersion": None, "note": None,
            },
        ],
        "unmanaged": [
            {"kind": "WorkflowDef", "name": "made_in_the_ui", "version": 3, "managedByMetasync": False}
        ],
        "refusals": [],
        "ignored": [],
        "summary": {"create": 1, "update": 2, "delete": 0, "noop": 1},
    }  # fmt: skip
    assert out.getvalue().startswith('{\n  "formatVersion": 1,\n  "environment": "qa",')


def test_markdown() -> None:
    assert render_plan_markdown(PLAN) == (
        "### metasync plan: `qa`\n"
        "\n"
        "**1 to create, 2 to update, 0 to delete, 1 unchanged** on "
        "`http://127.0.0.1:18082` (Conductor 3.15)\n"
        "\n"
        "<details><summary><code>~ TaskDef charge_payment</code> (update, 1 field(s))</summary>\n"
        "\n"
        "```diff\n"
        "! retryCount: 3 -> 5\n"
        "```\n"
        "\n"
        "</details>\n"
        "<details><summary><code>+ TaskDef refund_payment</code> (create)</summary>\n"
        "\n"
        "```diff\n"
        '+ name: "refund_payment"\n'
        "+ retryCount: 2\n"
        "```\n"
        "\n"
        "</details>\n"
        "<details><summary><code>~ WorkflowDef order_fulfillment v1</code> (update, 4 field(s))"
        "</summary>\n"
        "\n"
        "```diff\n"
        "! tasks[ref=pick].optional: true -> false\n"
        "+ tasks[ref=audit] (SIMPLE):\n"
        '+   name: "audit"\n'
        "- tasks[ref=old] (SIMPLE):\n"
        '-   name: "old"\n'
        '! tasks (order): ["a", "b"] -> ["b", "a"]\n'
        "```\n"
        "\n"
        "</details>\n"
        "\n"
        "<details><summary>1 object(s) on the server are not in git and are left alone</summary>\n"
        "\n"
        "- WorkflowDef (1): `made_in_the_ui v3`\n"
        "\n"
        "</details>\n"
    )


def test_markdown_is_capped_and_says_where_the_rest_is() -> None:
    many = Plan(
        "prod", "http://127.0.0.1:18083", "3.15",
        tuple(
            Change("WorkflowDef", f"wf_{i:03d}", 1, "update",
                   tuple(FieldChange(f"tasks[ref=t{j}].retryCount", j, j + 1) for j in range(20)))
            for i in range(500)
        ),
    )  # fmt: skip
    text = render_plan_markdown(many)
    assert len(text) <= 60_000
    shown = text.count("<details>")
    assert 0 < shown < 500
    assert text.endswith(
        f"\n**{500 - shown} more resource(s) not shown** (comment size limit): "
        + ", ".join(f"`~ WorkflowDef wf_{i:03d} v1`" for i in range(shown, shown + 10))
        + f" and {500 - shown - 10} more. The full plan is in the job log (`metasync plan`).\n"
    )


def test_markdown_without_changes() -> None:
    plan = Plan("dev", "s", "3.15", (Change("TaskDef", "t", None, "noop"),))
    assert "No changes: the server matches git." in render_plan_markdown(plan)


#: new versions, a blocked delete, a note and a refusal: what safe apply adds to a plan
GUARDED = Plan(
    "prod", "http://127.0.0.1:18083", "3.15",
    (
        Change("WorkflowDef", "invoicing", 3, "create", (FieldChange("timeoutSeconds", 60, 90),),
               "sha256:1111", "sha256:2222", "new version (policy new-version): v2 stays",
               previous_version=2),
        Change("WorkflowDef", "billing", 1, "update", (FieldChange("description", "a", "b"),),
               "sha256:3333", "sha256:4444", "1 field(s) differ",
               note="2 executions running: each keeps the definition it started with"),
        Change("WorkflowDef", "legacy", 1, "delete", (), "sha256:5555", None,
               "written by metasync, no longer in git (policy.prune)",
               blocked="1 execution running (e.g. abc): not deleted without --force"),
    ),
    refusals=(Problem("prune would delete 12 object(s), more than policy.maxDeletes (10)",
                      hint="Raise policy.maxDeletes."),),
)  # fmt: skip


def test_text_shows_new_versions_blocks_notes_and_refusals() -> None:
    out = io.StringIO()
    write_plan_text(out, GUARDED, color=False)
    assert out.getvalue() == (
        "Plan for prod: http://127.0.0.1:18083, Conductor 3.15\n"
        "\n"
        "+ WorkflowDef invoicing v3  (new version, 1 field(s) changed from v2 (v2 stays))\n"
        "    ~ timeoutSeconds: 60 -> 90\n"
        "\n"
        "~ WorkflowDef billing v1  (update, 1 field(s))\n"
        "    ! note: 2 executions running: each keeps the definition it started with\n"
        '    ~ description: "a" -> "b"\n'
        "\n"
        "- WorkflowDef legacy v1  (delete)\n"
        "    ! blocked: 1 execution running (e.g. abc): not deleted without --force\n"
        "    ! written by metasync, no longer in git (policy.prune)\n"
        "\n"
        "refused: prune would delete 12 object(s), more than policy.maxDeletes (10)\n"
        "  Raise policy.maxDeletes.\n"
        "\n"
        "Plan: 1 to create, 1 to update, 1 to delete, 0 unchanged.\n"
    )


def test_json_carries_blocks_previous_versions_notes_and_refusals() -> None:
    out = io.StringIO()
    write_plan_json(out, GUARDED)
    document = json.loads(out.getvalue())
    assert [(c["previousVersion"], c["note"], c["blocked"]) for c in document["changes"]] == [
        (2, None, None),
        (None, "2 executions running: each keeps the definition it started with", None),
        (None, None, "1 execution running (e.g. abc): not deleted without --force"),
    ]
    assert document["refusals"] == [
        "prune would delete 12 object(s), more than policy.maxDeletes (10)"
    ]


def test_markdown_shows_blocks_and_refusals() -> None:
    text = render_plan_markdown(GUARDED)
    assert (
        "> **Refused**: prune would delete 12 object(s), more than policy.maxDeletes (10). "
        "Raise policy.maxDeletes.\n" in text
    )
    assert (
        "<details><summary><code>- WorkflowDef legacy v1</code> (delete)</summary>\n"
        "\n"
        "> blocked: 1 execution running (e.g. abc): not deleted without --force\n"
        "\n"
        "> written by metasync, no longer in git (policy.prune)\n"
        "\n"
        "```diff\n"
        "```\n"
    ) in text
    assert "(new version, 1 field(s) changed from v2 (v2 stays))" in text


def test_an_apply_of_many_objects_counts_those_that_landed_and_names_each_other_one() -> None:
    """Past 100 objects the result table counts what landed by kind and action (first and
    last named); every object that did not land keeps its own row; the total is of objects."""
    tasks = [Change("TaskDef", f"t{i}", None, "create") for i in range(2)]
    flows = [Change("WorkflowDef", f"w{i:03d}", 1, "create") for i in range(150)]
    outcomes = [
        *(Outcome(c, "landed") for c in tasks),
        *(Outcome(c, "not landed" if c.name == "w007" else "landed") for c in flows),
        Outcome(Change("WorkflowDef", "old", 1, "update"), "landed"),
    ]
    out = io.StringIO()
    write_apply_result(out, outcomes, (), color=False)
    rows = [line for line in out.getvalue().splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row.strip("│").split("│")] for row in rows] == [
        ["TaskDef: 2 objects, t0 … t1", "create", "landed"],
        ["WorkflowDef: 149 objects, w000 v1 … w149 v1", "create", "landed"],
        ["WorkflowDef w007 v1", "create", "not landed"],
        ["WorkflowDef old v1", "update", "landed"],
    ]
    assert out.getvalue().endswith("152 of 153 change(s) landed.\n")
    # up to 100 objects: a row each
    out = io.StringIO()
    write_apply_result(out, outcomes[:100], (), color=False)
    assert "WorkflowDef w097 v1" in out.getvalue()
    assert "objects," not in out.getvalue()
