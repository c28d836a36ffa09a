"""Warnings that do not drown the output: a rule id each, summed up by rule, sorted by file and
line, shown once, silenced per rule with a reason (project, environment, files)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import conductor_server
from helpers import ENVIRONMENT, run_cli, write_project
from metasync.errors import RULES, Problem

SRC = Path(__file__).resolve().parent.parent / "src" / "metasync"

A = """\
apiVersion: metasync/v1
kind: WorkflowDef
metadata: {name: NAMEa}
spec:
  ownerEmail: team@example.com
  tasks:
    - {name: w3, taskReferenceName: t3}
    - {name: w4, taskReferenceName: t4, retryCont: 1}
    - {name: w5, taskReferenceName: t5}
"""
B = """\
apiVersion: metasync/v1
kind: WorkflowDef
metadata: {name: NAMEb}
spec:
  ownerEmail: team@example.com
  tasks:
    - {name: w1, taskReferenceName: t1}
    - {name: w2, taskReferenceName: t2}
"""
DEFAULTS = "Conductor will run the task with default settings (3 retries, 60 s apart, 1 h response timeout)"
UNKNOWN = (
    "warning: manifests/a.yaml:8 tasks[ref=t4].retryCont: unknown field 'retryCont': the server "
    "ignores it, and so does the plan; did you mean 'retryCount'? [unknown-field]\n"
    "  Fix the name or remove the field (field names are Conductor's, case-sensitive).\n"
)


def undefined(file: str, line: int, n: int) -> str:
    return f"manifests/{file}:{line} tasks[ref=t{n}].name: no TaskDef 'w{n}' in this project: {DEFAULTS}"


def project(root: Path, files: dict[str, str] | None = None, environment: str = ENVIRONMENT,
            prefix: str = "") -> Path:  # fmt: skip
    """Five undefined-taskdef warnings (a.yaml: 3, b.yaml: 2) and one unknown-field (a.yaml:8)."""
    manifests = {"manifests/a.yaml": A.replace("NAME", prefix),
                 "manifests/b.yaml": B.replace("NAME", prefix)}  # fmt: skip
    return write_project(root, {**manifests, **(files or {})}, environment)


def validate(root: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("--project", str(root), "validate", *args)
    return result.exit_code, result.stdout, result.stderr


def test_the_summary_groups_by_rule_with_its_count_first_places_and_hint(tmp_path: Path) -> None:
    code, out, err = validate(project(tmp_path))
    assert code == 0, err
    assert err == (
        "warning: 5 × a SIMPLE task names a TaskDef the project does not define "
        "[undefined-taskdef]; the first 3:\n"
        f"  {undefined('a.yaml', 7, 3)}\n"
        f"  {undefined('a.yaml', 8, 4)}\n"
        f"  {undefined('a.yaml', 9, 5)}\n"
        "  Define the task under manifests/, or check the name.\n"
        + UNKNOWN
        + "6 warning(s), 2 not shown: `--warnings all` shows every one. To silence a rule, add "
        "`{rule: undefined-taskdef, reason: ...}` under warnings.ignore in metasync.yaml or the "
        "environment's environment.yaml.\n"
    )
    assert out == "valid: 2 resources for dev (6 warning(s))\n"


@pytest.mark.parametrize("where", ["global", "command"])
def test_all_shows_every_warning_by_file_and_line(tmp_path: Path, where: str) -> None:
    root = str(project(tmp_path))
    args = (
        ("--project", root, "--warnings", "all", "validate")
        if where == "global"
        else ("--project", root, "validate", "--warnings", "all")
    )
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    heads = [
        line.split(": ", 2)[1] for line in result.stderr.splitlines() if line.startswith("warning")
    ]
    # the unknown field is found first (while loading), yet shown in its place
    assert heads == [
        "manifests/a.yaml:7 tasks[ref=t3].name",
        "manifests/a.yaml:8 tasks[ref=t4].name",
        "manifests/a.yaml:8 tasks[ref=t4].retryCont",
        "manifests/a.yaml:9 tasks[ref=t5].name",
        "manifests/b.yaml:7 tasks[ref=t1].name",
        "manifests/b.yaml:8 tasks[ref=t2].name",
    ]
    assert UNKNOWN in result.stderr
    assert f"warning: {undefined('b.yaml', 8, 2)} [undefined-taskdef]\n" in result.stderr


def test_none_shows_a_count_only(tmp_path: Path) -> None:
    code, out, err = validate(project(tmp_path), "--warnings", "none")
    assert (code, err) == (0, "6 warning(s) not shown (--warnings summary or all shows them)\n")
    assert out == "valid: 2 resources for dev (6 warning(s))\n"


def ignoring(entry: str) -> str:
    return f"warnings:\n  ignore:\n    - {entry}\n"


def test_a_project_silences_a_rule_and_counts_what_it_silenced(tmp_path: Path) -> None:
    files = {
        "metasync.yaml": "name: p\n" + ignoring("{rule: undefined-taskdef, reason: workers' repo}")
    }
    code, out, err = validate(project(tmp_path, files))
    assert code == 0, err
    assert err == UNKNOWN + "1 warning(s); 5 suppressed by warnings.ignore\n"
    assert out == "valid: 2 resources for dev (1 warning(s), 5 suppressed)\n"


def test_an_environment_silences_a_rule_for_itself(tmp_path: Path) -> None:
    environment = ENVIRONMENT + ignoring("{rule: unknown-field, reason: a field of our fork}")
    root = project(tmp_path, environment=environment)
    (root / "environments" / "qa").mkdir()
    (root / "environments" / "qa" / "environment.yaml").write_text(ENVIRONMENT)
    _, out, err = validate(root, "--env", "dev")
    assert "[unknown-field]" not in err
    assert "undefined-taskdef" in err
    assert out == "valid: 2 resources for dev (5 warning(s), 1 suppressed)\n"
    _, out, err = validate(root, "--env", "qa")
    assert UNKNOWN in err
    assert out == "valid: 2 resources for qa (6 warning(s))\n"


def test_files_narrow_a_silenced_rule(tmp_path: Path) -> None:
    entry = "{rule: undefined-taskdef, files: manifests/b*, reason: b's workers are elsewhere}"
    code, out, err = validate(project(tmp_path, {"metasync.yaml": "name: p\n" + ignoring(entry)}))
    assert code == 0, err
    # three left: each in full, by rule, nothing summed up
    assert err == (
        f"warning: {undefined('a.yaml', 7, 3)} [undefined-taskdef]\n"
        "  Define the task under manifests/, or check the name.\n"
        f"warning: {undefined('a.yaml', 8, 4)} [undefined-taskdef]\n"
        "  Define the task under manifests/, or check the name.\n"
        f"warning: {undefined('a.yaml', 9, 5)} [undefined-taskdef]\n"
        "  Define the task under manifests/, or check the name.\n"
        + UNKNOWN
        + "4 warning(s); 2 suppressed by warnings.ignore\n"
    )
    assert out == "valid: 2 resources for dev (4 warning(s), 2 suppressed)\n"


@pytest.mark.parametrize("file", ["metasync.yaml", "environments/dev/environment.yaml"])
def test_a_silenced_rule_needs_a_reason(tmp_path: Path, file: str) -> None:
    body = ignoring("rule: undefined-taskdef\n      files: manifests/b.yaml")
    files = {"metasync.yaml": "name: p\n" + body} if file == "metasync.yaml" else {}
    environment = ENVIRONMENT + body if file != "metasync.yaml" else ENVIRONMENT
    line = 4 if file == "metasync.yaml" else ENVIRONMENT.count("\n") + 3
    code, out, err = validate(project(tmp_path, files, environment))
    assert (code, out) == (1, "")
    assert err == (
        f"error: {file}:{line} warnings.ignore[0]: warnings.ignore of undefined-taskdef has no "
        "reason: say why the warning does not apply (reason: ...), for whoever reads this next\n"
    )


def test_an_unknown_rule_is_an_error_that_suggests_one(tmp_path: Path) -> None:
    files = {"metasync.yaml": "name: p\n" + ignoring("{rule: undefined-task-def, reason: x}")}
    code, _, err = validate(project(tmp_path, files))
    assert code == 1
    assert err.startswith(
        "error: metasync.yaml:4 warnings.ignore[0].rule: 'undefined-task-def' is not a warning rule"
    )
    assert err.endswith("did you mean 'undefined-taskdef'?\n")


def test_a_silenced_rule_that_matches_nothing_says_so(tmp_path: Path) -> None:
    entry = "{rule: undefined-taskdef, files: manifests/old/*, reason: moved}"
    code, out, err = validate(project(tmp_path, {"metasync.yaml": "name: p\n" + ignoring(entry)}))
    assert code == 0
    assert (
        "warning: metasync.yaml:4 warnings.ignore[0]: warnings.ignore of undefined-taskdef in "
        "manifests/old/* matches no warning [unused-ignore]\n"
        "  Remove the entry (the warning it silenced is gone), or fix its files glob.\n"
    ) in err
    assert out == "valid: 2 resources for dev (7 warning(s))\n"


def test_several_environments_show_each_warning_once(tmp_path: Path) -> None:
    root = project(tmp_path)
    for env in ("qa", "prod"):
        (root / "environments" / env).mkdir()
        (root / "environments" / env / "environment.yaml").write_text(ENVIRONMENT)
    code, out, err = validate(root, "--warnings", "all")
    assert code == 0, err
    assert err.count("warning: ") == 6
    assert out == "valid: 2 resources for dev, prod, qa (6 warning(s))\n"


def test_warnings_with_an_error_are_summed_up_and_the_error_is_in_full(tmp_path: Path) -> None:
    bad = "apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {name: td}\nspec: {retryCount: many}\n"
    root = project(tmp_path, {"manifests/td.yaml": bad})
    result = run_cli("--project", str(root), "plan", "--env", "dev")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("warning: 5 × a SIMPLE task names a TaskDef")
    assert lines[-1].startswith("error: manifests/td.yaml:4 retryCount: wrong type for retryCount")
    assert result.stderr.count("no TaskDef") == 3


def test_two_thousand_warnings_take_at_most_forty_lines(tmp_path: Path) -> None:
    tasks = "".join(f"    - {{name: w{t}, taskReferenceName: t{t}}}\n" for t in range(10))
    files = {
        f"manifests/wf{i:03d}.yaml": B.replace("NAMEb", f"wf{i}").split("  tasks:")[0]
        + "  tasks:\n"
        + tasks
        + "  failureWorkflow: nowhere\n"
        for i in range(200)
    }
    code, out, err = validate(write_project(tmp_path, files))
    assert code == 0, err[-2000:]
    assert out == "valid: 200 resources for dev (2200 warning(s))\n"
    assert len(err.splitlines()) <= 40, err
    assert "2000 × a SIMPLE task names a TaskDef" in err
    assert "200 × failureWorkflow names a workflow" in err


def test_every_warning_names_a_known_rule() -> None:
    with pytest.raises(ValueError, match="unknown warning rule"):
        Problem("x", severity="warning", rule="no-such-rule")
    assert all(rule == rule.lower() and " " not in rule for rule in RULES)
    # each place in the code that makes a warning gives it a rule
    missing = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            values = [*node.args, *(k.value for k in node.keywords if k.arg != "unknown")]
            warns = any(
                isinstance(c, ast.Constant) and c.value == "warning"
                for v in values
                for c in ([v.body, v.orelse] if isinstance(v, ast.IfExp) else [v])
            )
            named = any(k.arg == "rule" for k in node.keywords) or len(node.args) >= 5
            if warns and not named:
                missing.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert missing == []


def test_plan_shows_the_warnings_once_and_its_json_keeps_them_all(
    tmp_path: Path, conductor: conductor_server.Server, prefix: str
) -> None:
    environment = ENVIRONMENT.replace("http://127.0.0.1:18081", conductor.url)
    root = str(project(tmp_path, environment=environment, prefix=prefix))
    text = run_cli("--project", root, "plan", "--env", "dev")
    assert text.exit_code == 0, text.stderr
    assert text.stderr.count("[undefined-taskdef]; the first 3:") == 1
    assert text.stderr.count("[unknown-field]") == 1
    assert len(text.stderr.splitlines()) == 8
    document = json.loads(run_cli("--project", root, "plan", "--env", "dev", "-o", "json").stdout)
    warnings = document["warnings"]
    assert [(w["file"], w["line"], w["rule"]) for w in warnings] == [
        ("manifests/a.yaml", 7, "undefined-taskdef"),
        ("manifests/a.yaml", 8, "undefined-taskdef"),
        ("manifests/a.yaml", 8, "unknown-field"),
        ("manifests/a.yaml", 9, "undefined-taskdef"),
        ("manifests/b.yaml", 7, "undefined-taskdef"),
        ("manifests/b.yaml", 8, "undefined-taskdef"),
    ]
    assert warnings[0] == {
        "rule": "undefined-taskdef",
        "severity": "warning",
        "message": f"no TaskDef 'w3' in this project: {DEFAULTS}",
        "file": "manifests/a.yaml",
        "line": 7,
        "path": "tasks[ref=t3].name",
        "hint": "Define the task under manifests/, or check the name.",
    }
    assert document["suppressedWarnings"] == 0
    applied = run_cli("--project", root, "apply", "--env", "dev", "--auto-approve")
    assert applied.exit_code == 0, applied.stderr
    assert applied.stderr.count("[undefined-taskdef]; the first 3:") == 1
    assert applied.stderr.count("[unknown-field]") == 1
