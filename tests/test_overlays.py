"""Every overlay rule of docs/environments.md, through `render` (pure: no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import run_cli, write_project

WORKFLOW = """\
apiVersion: metasync/v1
kind: WorkflowDef
metadata: {name: wf}
spec:
  version: 1
  ownerEmail: ((vars.owner_email))
  inputTemplate: {region: null, tier: gold}
  outputParameters: {a: 1, b: 2}
  inputParameters: [x, y]
  tasks:
    - {name: first, taskReferenceName: first, type: INLINE}
    - name: route
      taskReferenceName: route
      type: SWITCH
      evaluatorType: value-param
      expression: v
      inputParameters: {v: "${workflow.input.v}"}
      decisionCases:
        card:
          - {name: charge, taskReferenceName: charge, type: INLINE}
          - {name: audit, taskReferenceName: audit, type: INLINE}
      defaultCase:
        - {name: reject, taskReferenceName: reject, type: INLINE}
    - name: fork
      taskReferenceName: fork
      type: FORK_JOIN
      forkTasks:
        - - name: loop
            taskReferenceName: loop
            type: DO_WHILE
            loopCondition: "false"
            loopOver:
              - {name: pick, taskReferenceName: pick, type: INLINE, inputParameters: {line: 1}}
        - - {name: book, taskReferenceName: book, type: INLINE}
    - {name: join, taskReferenceName: join, type: JOIN, joinOn: [loop, book]}
"""

TASKDEF = """\
apiVersion: metasync/v1
kind: TaskDef
metadata: {name: td}
spec:
  ownerEmail: ((vars.owner_email))
  retryCount: 2
  inputKeys: [a, b]
  inputTemplate: {k: v, gone: x}
"""


def render(tmp_path: Path, overlay: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": WORKFLOW,
            "manifests/td.yaml": TASKDEF,
            "environments/dev/overlays/o.yaml": overlay,
            **(extra or {}),
        },
    )
    result = run_cli("--project", str(tmp_path), "render", "--env", "dev", "-o", "json")
    assert result.exit_code == 0, result.stderr
    return {r["name"]: r["spec"] for r in json.loads(result.stdout)["resources"]}


def validate(tmp_path: Path, overlay: str) -> tuple[int, str, str]:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": WORKFLOW,
            "manifests/td.yaml": TASKDEF,
            "environments/dev/overlays/o.yaml": overlay,
        },
    )
    result = run_cli("--project", str(tmp_path), "validate", "--env", "dev")
    return result.exit_code, result.stdout, result.stderr


def fails(tmp_path: Path, overlay: str) -> str:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": WORKFLOW,
            "manifests/td.yaml": TASKDEF,
            "environments/dev/overlays/o.yaml": overlay,
        },
    )
    result = run_cli("--project", str(tmp_path), "render", "--env", "dev")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    return result.stderr


def refs(tasks: list[dict[str, Any]]) -> list[str]:
    return [t["taskReferenceName"] for t in tasks]


def test_delete_a_task_inside_a_switch_case(tmp_path: Path) -> None:
    wf = render(
        tmp_path,
        "kind: WorkflowDef\nmetadata: {name: wf}\npatch:\n  tasks:\n    - {taskReferenceName: audit, $patch: delete}\n",
    )["wf"]
    assert refs(wf["tasks"][1]["decisionCases"]["card"]) == ["charge"]


def test_merge_into_a_task_inside_a_fork_branch(tmp_path: Path) -> None:
    wf = render(
        tmp_path,
        "kind: WorkflowDef\nmetadata: {name: wf}\npatch:\n  tasks:\n"
        "    - {taskReferenceName: pick, retryCount: 5, inputParameters: {zone: B}}\n",
    )["wf"]
    pick = wf["tasks"][2]["forkTasks"][0][0]["loopOver"][0]
    assert pick == {
        "name": "pick", "taskReferenceName": "pick", "type": "INLINE",
        "inputParameters": {"line": 1, "zone": "B"}, "retryCount": 5,
    }  # fmt: skip


def test_insert_after_and_before_a_nested_task(tmp_path: Path) -> None:
    wf = render(
        tmp_path,
        "kind: WorkflowDef\nmetadata: {name: wf}\npatch:\n  tasks:\n"
        "    - {name: weigh, taskReferenceName: weigh, type: INLINE, $after: pick}\n"
        "    - {name: fraud, taskReferenceName: fraud, type: INLINE, $before: charge}\n"
        "    - {name: notify, taskReferenceName: notify, type: SIMPLE}\n",
    )["wf"]
    assert refs(wf["tasks"][2]["forkTasks"][0][0]["loopOver"]) == ["pick", "weigh"]
    assert refs(wf["tasks"][1]["decisionCases"]["card"]) == ["fraud", "charge", "audit"]
    assert refs(wf["tasks"]) == ["first", "route", "fork", "join", "notify"]  # no anchor: the end


def test_null_in_the_base_stays_null_in_the_overlay_removes(tmp_path: Path) -> None:
    wf = render(
        tmp_path,
        "kind: WorkflowDef\nmetadata: {name: wf}\npatch:\n  inputTemplate: {tier: null, extra: 1}\n"
        "  outputParameters: {b: null}\n",
    )["wf"]
    assert wf["inputTemplate"] == {"region": None, "extra": 1}
    assert wf["outputParameters"] == {"a": 1}


def test_other_lists_are_replaced_and_maps_merge(tmp_path: Path) -> None:
    specs = render(
        tmp_path,
        "kind: TaskDef\nmetadata: {name: td}\npatch:\n  inputKeys: [c]\n  retryCount: ((vars.retries))\n"
        "  inputTemplate: {gone: null}\n",
    )
    assert specs["td"]["inputKeys"] == ["c"]
    assert specs["td"]["retryCount"] == 4  # variables work in overlays
    assert specs["td"]["inputTemplate"] == {"k": "v"}


def test_json_patch_runs_after_the_merge(tmp_path: Path) -> None:
    wf = render(
        tmp_path,
        "kind: WorkflowDef\nmetadata: {name: wf}\npatch:\n  timeoutSeconds: 60\njsonPatch:\n"
        "  - {op: replace, path: /timeoutSeconds, value: 90}\n"
        "  - {op: add, path: /inputParameters/-, value: z}\n",
    )["wf"]
    assert wf["timeoutSeconds"] == 90
    assert wf["inputParameters"] == ["x", "y", "z"]


def test_version_specific_overlay(tmp_path: Path) -> None:
    v2 = WORKFLOW.replace("  version: 1\n", "  version: 2\n")
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": WORKFLOW,
            "manifests/wf2.yaml": v2,
            "environments/dev/overlays/o.yaml": "kind: WorkflowDef\nmetadata: {name: wf, version: 2}\npatch: {description: two}\n",
        },
    )
    result = run_cli("--project", str(tmp_path), "render", "--env", "dev", "-o", "json")
    specs = {r["version"]: r["spec"] for r in json.loads(result.stdout)["resources"]}
    assert "description" not in specs[1]
    assert specs[2]["description"] == "two"


def test_a_missing_target_task_is_reported_with_the_overlays_file_and_line(tmp_path: Path) -> None:
    stderr = fails(
        tmp_path,
        "kind: WorkflowDef\nmetadata: {name: wf}\npatch:\n  tasks:\n    - taskReferenceName: pik\n      retryCount: 5\n",
    )
    assert stderr == (
        "error: environments/dev/overlays/o.yaml:5 tasks[ref=pik].taskReferenceName: WorkflowDef wf v1: "
        "no task 'pik' to change in this workflow; did you mean 'pick'?\n"
        "  A task entry without `name` changes an existing task; give `name` (and `$after`) to add one.\n"
    )


def test_a_missing_anchor_and_a_missing_task_to_delete(tmp_path: Path) -> None:
    stderr = fails(
        tmp_path,
        "kind: WorkflowDef\nmetadata: {name: wf}\npatch:\n  tasks:\n"
        "    - {name: n, taskReferenceName: n, type: INLINE, $after: nowhere}\n",
    )
    assert (
        "o.yaml:5 tasks[ref=n].$after: WorkflowDef wf v1: no task 'nowhere' to place 'n' next to"
        in stderr
    )
    stderr = fails(
        tmp_path,
        "kind: WorkflowDef\nmetadata: {name: wf}\npatch:\n  tasks:\n    - {taskReferenceName: ghost, $patch: delete}\n",
    )
    assert (
        "o.yaml:5 tasks[ref=ghost].taskReferenceName: WorkflowDef wf v1: no task 'ghost' to delete"
        in stderr
    )


def test_a_missing_resource_and_two_overlays_for_one(tmp_path: Path) -> None:
    stderr = fails(tmp_path, "kind: WorkflowDef\nmetadata: {name: wff}\npatch: {description: x}\n")
    assert stderr.startswith(
        "error: environments/dev/overlays/o.yaml:2 metadata.name: overlay targets WorkflowDef wff, "
        "which is not in manifests/; did you mean 'wf'?\n"
    )
    stderr = fails(
        tmp_path,
        "kind: TaskDef\nmetadata: {name: td}\npatch: {retryCount: 1}\n---\n"
        "kind: TaskDef\nmetadata: {name: td}\npatch: {retryCount: 2}\n",
    )
    assert (
        "o.yaml:6 metadata.name: a second overlay for TaskDef td; the first is at environments/dev/overlays/o.yaml:2"
        in stderr
    )


def test_a_failing_json_patch_names_its_operation(tmp_path: Path) -> None:
    stderr = fails(
        tmp_path,
        "kind: WorkflowDef\nmetadata: {name: wf}\njsonPatch:\n  - {op: add, path: /inputParameters/-, value: z}\n"
        "  - {op: remove, path: /nothing/here}\n",
    )
    assert stderr == (
        "error: environments/dev/overlays/o.yaml:5 jsonPatch[1]: WorkflowDef wf v1: JSON Patch "
        "operation 1 cannot be applied: member 'nothing' not found\n"
        "  Check the op and path against the merged definition (`metasync render`).\n"
    )


def test_the_result_is_validated_again(tmp_path: Path) -> None:
    stderr = fails(
        tmp_path, "kind: TaskDef\nmetadata: {name: td}\npatch: {retryLogic: SOMETIMES}\n"
    )
    assert "after overlays, TaskDef td: 'SOMETIMES' is not a valid retryLogic" in stderr
    # an unknown field an overlay adds: a warning (the server would drop it), said after overlays
    code, _, stderr = validate(
        tmp_path, "kind: TaskDef\nmetadata: {name: td}\npatch: {retrycount: 1}\n"
    )
    assert code == 0, stderr
    assert (
        "warning: environments/dev/overlays/o.yaml:3 retrycount: after overlays, TaskDef td: "
        "unknown field 'retrycount': the server ignores it, and so does the plan; did you mean "
        "'retryCount'?"
    ) in stderr


def test_overlays_are_per_environment(tmp_path: Path) -> None:
    render(tmp_path, "kind: TaskDef\nmetadata: {name: td}\npatch: {retryCount: 9}\n")
    qa = tmp_path / "environments" / "qa"
    qa.mkdir()
    (qa / "environment.yaml").write_text(
        (tmp_path / "environments" / "dev" / "environment.yaml").read_text()
    )
    result = run_cli("--project", str(tmp_path), "render", "--env", "qa", "-o", "json")
    specs = {r["name"]: r["spec"] for r in json.loads(result.stdout)["resources"]}
    assert specs["td"]["retryCount"] == 2
