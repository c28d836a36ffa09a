"""Plans as a reviewer reads them: created objects as trees, long values and lists wrapped."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

import conductor_server
from helpers import run_cli, write_project
from metasync.conductor.live import LiveState
from metasync.model.resource import Resource
from metasync.plan.model import Change, FieldChange, Plan, Unmanaged
from metasync.plan.planner import build_plan
from metasync.render.plan_markdown import render_plan_markdown
from metasync.render.plan_text import write_plan_text

ROUTE: dict[str, Any] = {
    "description": "Route an order to the warehouse that serves its region.",
    "version": 1,
    "restartable": True,  # the server's default, written by the user
    "inputParameters": ["orderId", "region"],
    "tasks": [
        {
            "name": "route_by_region",
            "taskReferenceName": "route",
            "type": "SWITCH",
            "evaluatorType": "javascript",
            "expression": "$.region == 'eu' ? 'EU' : ($.region == 'us' ? 'US' : "
            "($.region == 'apac' ? 'APAC' : 'OTHER'))",
            "inputParameters": {"region": "${workflow.input.region}"},
            "decisionCases": {
                "EU": [
                    {"name": "reserve_eu", "taskReferenceName": "reserve_eu", "retryCount": 3,
                     "optional": False},
                    {"name": "notify", "taskReferenceName": "notify_eu", "type": "HTTP",
                     "inputParameters": {"http_request": {
                         "uri": "https://notifications.example.com/v1/warehouses/eu-central-1/"
                         "messages?template=order-routed&priority=high",
                         "method": "POST"}}},
                ],
                "US": [{"name": "reserve_us", "taskReferenceName": "reserve_us"}],
            },
            "defaultCase": [
                {"name": "triage", "taskReferenceName": "triage", "type": "INLINE",
                 "inputParameters": {
                     "evaluatorType": "graaljs",
                     "expression": "(function () {\n  return {queue: 'manual'};\n})();",
                 }},
            ],
        },
    ],
}  # fmt: skip

EMPTY = LiveState("http://127.0.0.1:18081", "3.15.0", "3.15", {})


def text_of(plan: Plan) -> str:
    out = io.StringIO()
    write_plan_text(out, plan, color=False)
    return out.getvalue()


def test_a_created_workflow_reads_as_a_tree_task_by_task() -> None:
    plan = build_plan("dev", [Resource("WorkflowDef", "route_order", 1, ROUTE)], EMPTY)
    text = text_of(plan)
    assert text == (
        "Plan for dev: http://127.0.0.1:18081, Conductor 3.15\n"
        "\n"
        "+ WorkflowDef route_order v1  (create)\n"
        '    + description: "Route an order to the warehouse that serves its region."\n'
        "    + version: 1\n"
        "    + restartable: true\n"
        '    + inputParameters: ["orderId", "region"]\n'
        "    + tasks:\n"
        "    +   - route (SWITCH)\n"
        '    +     name: "route_by_region"\n'
        '    +     evaluatorType: "javascript"\n'
        "    +     expression: \"$.region == 'eu' ? 'EU' : ($.region == 'us' ? 'US' : ($.region == "
        "'apac' ? \\\n"
        "    +       'APAC' : 'OTHER'))\"\n"
        "    +     inputParameters:\n"
        '    +       region: "${workflow.input.region}"\n'
        "    +     decisionCases:\n"
        "    +       EU:\n"
        "    +         - reserve_eu (SIMPLE)\n"
        '    +           name: "reserve_eu"\n'
        "    +           retryCount: 3\n"
        "    +           optional: false\n"
        "    +         - notify_eu (HTTP)\n"
        '    +           name: "notify"\n'
        "    +           inputParameters:\n"
        "    +             http_request:\n"
        '    +               uri: "https://notifications.example.com/v1/warehouses/eu-central-1/'
        "messages?\\\n"
        '    +                 template=order-routed&priority=high"\n'
        '    +               method: "POST"\n'
        "    +       US:\n"
        "    +         - reserve_us (SIMPLE)\n"
        '    +           name: "reserve_us"\n'
        "    +     defaultCase:\n"
        "    +       - triage (INLINE)\n"
        '    +         name: "triage"\n'
        "    +         inputParameters:\n"
        '    +           evaluatorType: "graaljs"\n'
        "    +           expression: |\n"
        "    +             (function () {\n"
        "    +               return {queue: 'manual'};\n"
        "    +             })();\n"
        "\n"
        "Plan: 1 to create, 0 to update, 0 to delete, 0 unchanged.\n"
    )
    assert max(len(line) for line in text.splitlines()) <= 100


def test_a_create_shows_what_the_user_wrote_defaults_included() -> None:
    spec = {"retryCount": 3, "timeoutSeconds": 0, "responseTimeoutSeconds": 600,
            "ownerEmail": "team@example.com"}  # fmt: skip
    plan = build_plan("dev", [Resource("TaskDef", "charge", None, spec)], EMPTY)
    assert text_of(plan) == (
        "Plan for dev: http://127.0.0.1:18081, Conductor 3.15\n"
        "\n"
        "+ TaskDef charge  (create)\n"
        "    + retryCount: 3\n"
        "    + timeoutSeconds: 0\n"
        "    + responseTimeoutSeconds: 600\n"
        '    + ownerEmail: "team@example.com"\n'
        "\n"
        "Plan: 1 to create, 0 to update, 0 to delete, 0 unchanged.\n"
    )


def test_an_inserted_task_shows_what_git_states_and_a_long_change_is_a_tree_diff() -> None:
    before = {**ROUTE, "tasks": [{"name": "a", "taskReferenceName": "a"}]}
    after = {**ROUTE, "tasks": [{"name": "a", "taskReferenceName": "a"}, ROUTE["tasks"][0]]}
    live = LiveState("http://127.0.0.1:18081", "3.15.0", "3.15",
                     {("WorkflowDef", "route_order", 1): before})  # fmt: skip
    plan = build_plan("dev", [Resource("WorkflowDef", "route_order", 1, after)], live)
    text = text_of(plan)
    assert text.split("\n\n")[1].split("\n")[:9] == [
        "~ WorkflowDef route_order v1  (update, 1 field(s))",
        "    + tasks[ref=route] (SWITCH):",
        '    +   name: "route_by_region"',
        '    +   evaluatorType: "javascript"',
        "    +   expression: \"$.region == 'eu' ? 'EU' : ($.region == 'us' ? 'US' : ($.region == "
        "'apac' ? \\",
        "    +     'APAC' : 'OTHER'))\"",
        "    +   inputParameters:",
        '    +     region: "${workflow.input.region}"',
        "    +   decisionCases:",
    ]
    # what git states (optional: false) and no default it does not (startDelay: 0)
    assert '    +       - reserve_eu (SIMPLE)\n    +         name: "reserve_eu"\n' in text
    assert "    +         optional: false\n" in text
    assert "startDelay" not in text
    long = Plan("dev", "s", "3.15", (Change("WorkflowDef", "w", 1, "update", (
        FieldChange("tasks[ref=t].inputParameters.expression",
                    "(function () {\n  var total = 0;\n  return total;\n})();",
                    "(function () {\n  var total = 1;\n  return total;\n})();"),
    )),))  # fmt: skip
    assert text_of(long).split("\n\n")[1] == (
        "~ WorkflowDef w v1  (update, 1 field(s))\n"
        "    ~ tasks[ref=t].inputParameters.expression: |\n"
        "        (function () {\n"
        "    -     var total = 0;\n"
        "    +     var total = 1;\n"
        "          return total;\n"
        "        })();"
    )


UNMANAGED = (
    *(Unmanaged("WorkflowDef", f"made_in_the_ui_{i:02d}", 1) for i in range(14)),
    Unmanaged("TaskDef", "legacy_charge", None, owned=True),
)


def test_a_long_unmanaged_list_is_counted_and_wrapped() -> None:
    plan = Plan("dev", "http://127.0.0.1:18081", "3.15", (), unmanaged=UNMANAGED)
    text = text_of(plan)
    assert text.split("\n\n")[1] == (
        "On the server but not in git, left alone (15):\n"
        "  WorkflowDef (14): made_in_the_ui_00 v1, made_in_the_ui_01 v1, made_in_the_ui_02 v1,\n"
        "    made_in_the_ui_03 v1, made_in_the_ui_04 v1, made_in_the_ui_05 v1, made_in_the_ui_06 v1,\n"
        "    made_in_the_ui_07 v1, made_in_the_ui_08 v1, made_in_the_ui_09 v1, made_in_the_ui_10 v1,\n"
        "    made_in_the_ui_11 v1, made_in_the_ui_12 v1, made_in_the_ui_13 v1\n"
        "  TaskDef (1): legacy_charge (written by metasync, no longer in git)"
    )
    assert max(len(line) for line in text.splitlines()) <= 100


def test_markdown_shows_the_tree_and_the_list_within_a_small_limit() -> None:
    created = build_plan("dev", [Resource("WorkflowDef", "route_order", 1, ROUTE),
                                 Resource("TaskDef", "charge", None, {"retryCount": 3})], EMPTY)  # fmt: skip
    plan = Plan(created.environment, created.server, created.flavour, created.changes,
                unmanaged=UNMANAGED)  # fmt: skip
    full = render_plan_markdown(plan)
    assert "```diff\n+ retryCount: 3\n```\n" in full
    assert (
        "+     decisionCases:\n"
        "+       EU:\n"
        "+         - reserve_eu (SIMPLE)\n"
        '+           name: "reserve_eu"\n'
        "+           retryCount: 3\n"
    ) in full
    assert full.endswith(
        "<details><summary>15 object(s) on the server are not in git and are left alone</summary>\n"
        "\n"
        "- WorkflowDef (14): "
        + ", ".join(f"`made_in_the_ui_{i:02d} v1`" for i in range(14))
        + "\n- TaskDef (1): `legacy_charge (written by metasync, no longer in git)`\n"
        "\n"
        "</details>\n"
    )
    small = render_plan_markdown(plan, limit=700)
    assert len(small) <= 700
    assert small == (
        "### metasync plan: `dev`\n"
        "\n"
        "**2 to create, 0 to update, 0 to delete, 0 unchanged** on `http://127.0.0.1:18081` "
        "(Conductor 3.15)\n"
        "\n"
        "<details><summary><code>+ TaskDef charge</code> (create)</summary>\n"
        "\n"
        "```diff\n"
        "+ retryCount: 3\n"
        "```\n"
        "\n"
        "</details>\n"
        "\n"
        "**1 more resource(s) not shown** (comment size limit): `+ WorkflowDef route_order v1`. "
        "The full plan is in the job log (`metasync plan`).\n"
        "\n"
        "<details><summary>15 object(s) on the server are not in git and are left alone</summary>\n"
        "\n"
        "- WorkflowDef (14): "
        + ", ".join(f"`made_in_the_ui_{i:02d} v1`" for i in range(6))
        + ", ...\n"
        "- ... and 9 more: `metasync plan` lists them all\n"
        "\n"
        "</details>\n"
    )


def test_a_value_holding_backticks_gets_a_longer_fence() -> None:
    plan = Plan("dev", "s", "3.15", (Change("TaskDef", "t", None, "create", (
        FieldChange("description", None, "run ```make``` first"),)),))  # fmt: skip
    assert '````diff\n+ description: "run ```make``` first"\n````\n' in render_plan_markdown(plan)


def _manifests(prefix: str, inserted: bool) -> dict[str, str]:
    extra = (
        f"""
                      - name: {prefix}reserve
                        taskReferenceName: audit_eu
                        retryCount: 2
                        optional: false"""
        if inserted
        else ""
    )
    return {
        "manifests/taskdefs.yaml": f"""\
            apiVersion: metasync/v1
            kind: TaskDef
            metadata: {{name: {prefix}reserve}}
            spec:
              ownerEmail: team@example.com
              retryCount: 3
              timeoutSeconds: 0
              responseTimeoutSeconds: 600
            """,
        "manifests/route.yaml": f"""\
            apiVersion: metasync/v1
            kind: WorkflowDef
            metadata: {{name: {prefix}route}}
            spec:
              version: 1
              ownerEmail: team@example.com
              restartable: true
              tasks:
                - name: route_by_region
                  taskReferenceName: route
                  type: SWITCH
                  evaluatorType: value-param
                  expression: region
                  inputParameters:
                    region: ${{workflow.input.region}}
                  decisionCases:
                    EU:
                      - name: {prefix}reserve
                        taskReferenceName: reserve_eu{extra}
                  defaultCase:
                    - name: {prefix}reserve
                      taskReferenceName: reserve_other
            """,
    }


@pytest.mark.server
def test_plan_on_a_server_shows_a_create_and_an_update_as_trees(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    environment = f"server:\n  url: {conductor.url}\n"
    project = write_project(tmp_path / "p", _manifests(prefix, False), environment=environment)
    result = run_cli("--project", str(project), "plan", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert (
        f"+ TaskDef {prefix}reserve  (create)\n"
        f'    + name: "{prefix}reserve"\n'
        '    + ownerEmail: "team@example.com"\n'
        "    + retryCount: 3\n"
        "    + timeoutSeconds: 0\n"
        "    + responseTimeoutSeconds: 600\n"
    ) in result.stdout, result.stdout
    assert (
        f"+ WorkflowDef {prefix}route v1  (create)\n"
        f'    + name: "{prefix}route"\n'
        "    + version: 1\n"
        '    + ownerEmail: "team@example.com"\n'
        "    + restartable: true\n"
        "    + tasks:\n"
        "    +   - route (SWITCH)\n"
        '    +     name: "route_by_region"\n'
        '    +     evaluatorType: "value-param"\n'
        '    +     expression: "region"\n'
        "    +     inputParameters:\n"
        '    +       region: "${workflow.input.region}"\n'
        "    +     decisionCases:\n"
        "    +       EU:\n"
        "    +         - reserve_eu (SIMPLE)\n"
        f'    +           name: "{prefix}reserve"\n'
        "    +     defaultCase:\n"
        "    +       - reserve_other (SIMPLE)\n"
        f'    +         name: "{prefix}reserve"\n'
    ) in result.stdout, result.stdout
    applied = run_cli("--project", str(project), "apply", "--env", "dev", "--auto-approve")
    assert applied.exit_code == 0, applied.output

    write_project(tmp_path / "p", _manifests(prefix, True), environment=environment)
    result = run_cli("--project", str(project), "plan", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert (
        f"~ WorkflowDef {prefix}route v1  (update, 1 field(s))\n"
        "    + tasks[ref=audit_eu] (SIMPLE):\n"
        f'    +   name: "{prefix}reserve"\n'
        "    +   retryCount: 2\n"
        "    +   optional: false\n"
        "\n"
    ) in result.stdout, result.stdout
    assert "startDelay" not in result.stdout  # a default git does not state
    markdown = run_cli("--project", str(project), "plan", "--env", "dev", "-o", "markdown")
    assert (
        "```diff\n"
        "+ tasks[ref=audit_eu] (SIMPLE):\n"
        f'+   name: "{prefix}reserve"\n'
        "+   retryCount: 2\n"
        "+   optional: false\n"
    ) in markdown.stdout


def test_a_changed_value_too_long_for_one_line_is_a_line_diff_with_long_runs_elided() -> None:
    expression = "$.region == 'eu' ? 'EU' : ($.region == 'us' ? 'US' : ($.region == 'apac' ? "
    plan = Plan("dev", "s", "3.15", (Change("WorkflowDef", "w", 1, "update", (
        FieldChange("tasks[ref=route].expression", expression + "'APAC' : 'OTHER'))",
                    expression + "'ASIA' : 'OTHER'))"),
        FieldChange("tasks", [f"task_{i}" for i in range(12)],
                    [*(f"task_{i}" for i in range(1, 12)), "task_0"]),
    )),))  # fmt: skip
    assert text_of(plan).split("\n\n")[1] == (
        "~ WorkflowDef w v1  (update, 2 field(s))\n"
        "    ~ tasks[ref=route].expression:\n"
        "    -   \"$.region == 'eu' ? 'EU' : ($.region == 'us' ? 'US' : ($.region == 'apac' ? "
        "'APAC' : \\\n"
        "    +   \"$.region == 'eu' ? 'EU' : ($.region == 'us' ? 'US' : ($.region == 'apac' ? "
        "'ASIA' : \\\n"
        "        'OTHER'))\"\n"
        "    ~ tasks (order):\n"
        '    -   - "task_0"\n'
        '        - "task_1"\n'
        '        - "task_2"\n'
        "        ... (7 unchanged line(s))\n"
        '        - "task_10"\n'
        '        - "task_11"\n'
        '    +   - "task_0"'
    )


def test_a_huge_value_shows_its_first_lines_and_says_how_many_more() -> None:
    plan = Plan("dev", "s", "3.15", (Change("TaskDef", "big", None, "create", (
        FieldChange("description", None, "a" * 1_000_000),)),))  # fmt: skip
    lines = text_of(plan).splitlines()
    assert lines[3] == '    + description: "' + "a" * 79 + "\\"
    assert lines[4] == "    +   " + "a" * 91 + "\\"
    assert lines[3 + 200] == (
        "    +   ... (10790 more line(s) of this value: `-o json` has it whole)"
    )
    assert len(lines) == 3 + 200 + 1 + 2
