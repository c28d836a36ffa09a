"""Every kind of bad input: exit 1, the file and line (and key path), what to do, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli, write_project


def validate(root: Path) -> tuple[int, str, str]:
    result = run_cli("--project", str(root), "validate")
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def assert_warns_with(root: Path, expected: str) -> None:
    """Valid, and ``expected`` is among the warnings."""
    code, _, stderr = validate(root)
    assert code == 0, stderr
    assert expected in stderr


def assert_fails_with(root: Path, expected: str, errors: int = 1) -> None:
    code, stdout, stderr = validate(root)
    assert code == 1
    assert stdout == ""
    assert stderr == expected + f"invalid: {errors} error(s), 0 warning(s) (dev)\n"


def test_malformed_yaml(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: WorkflowDef
                metadata:
                  name: wf
                 spec:
                  tasks: []
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/wf.yaml:5:2: this line's indentation matches no key of the mapping "
        "that starts at line 1\n"
        "  5 |  spec:\n"
        "    |  ^\n"
        "  Indent it as far as the keys it belongs with (YAML nests by indentation).\n",
    )


def test_unquoted_expression_in_flow_mapping_says_to_quote_it(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: WorkflowDef
                metadata: {name: wf}
                spec:
                  ownerEmail: ((vars.owner_email))
                  tasks:
                    - name: a
                      taskReferenceName: a
                      inputParameters: {orderId: ${workflow.input.orderId}}
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/wf.yaml:9:35: unquoted Conductor expression ${workflow.input.orderId} "
        "inside a {...} flow mapping: YAML reads its braces as structure\n"
        "  9 |       inputParameters: {orderId: ${workflow.input.orderId}}\n"
        "    |                                   ^\n"
        '  Quote it: orderId: "${workflow.input.orderId}" (or write the mapping in block style).\n',
    )


def test_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: WorkflowDef
                metadata: {name: wf}
                spec:
                  ownerEmail: ((vars.owner_email))
                  tasks:
                    - name: a
                      taskReferenceName: a
                      retryCont: 3
                """
        },
    )
    # the server takes and drops a field it does not know: a warning, never a refusal
    assert_warns_with(
        tmp_path,
        "warning: manifests/wf.yaml:9 tasks[ref=a].retryCont: unknown field 'retryCont': the "
        "server ignores it, and so does the plan; did you mean 'retryCount'? [unknown-field]\n"
        "  Fix the name or remove the field (field names are Conductor's, case-sensitive).\n",
    )


def test_unknown_field_deep_inside_a_switch_case_is_placed_by_reference(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: WorkflowDef
                metadata: {name: wf}
                spec:
                  ownerEmail: ((vars.owner_email))
                  tasks:
                    - name: route
                      taskReferenceName: route
                      type: SWITCH
                      evaluatorType: value-param
                      expression: x
                      decisionCases:
                        card:
                          - name: charge
                            taskReferenceName: charge
                            subWorkflowParams: {name: x}
                """
        },
    )
    assert_warns_with(
        tmp_path,
        "warning: manifests/wf.yaml:16 tasks[ref=charge].subWorkflowParams: unknown field "
        "'subWorkflowParams': the server ignores it, and so does the plan; did you mean "
        "'subWorkflowParam'? [unknown-field]\n"
        "  Fix the name or remove the field (field names are Conductor's, case-sensitive).\n",
    )


def test_wrong_type(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/td.yaml": """\
                apiVersion: metasync/v1
                kind: TaskDef
                metadata: {name: td}
                spec:
                  ownerEmail: ((vars.owner_email))
                  retryCount: "3"
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/td.yaml:6 retryCount: wrong type for retryCount: expected an integer, "
        "got string '3'\n"
        "  Remove the quotes around the value.\n",
    )


def test_bad_enum_value(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/td.yaml": """\
                apiVersion: metasync/v1
                kind: TaskDef
                metadata: {name: td}
                spec:
                  ownerEmail: ((vars.owner_email))
                  retryLogic: EXPONENTIAL
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/td.yaml:6 retryLogic: 'EXPONENTIAL' is not a valid retryLogic; "
        "did you mean 'EXPONENTIAL_BACKOFF'?\n"
        "  Use one of: FIXED, EXPONENTIAL_BACKOFF, LINEAR_BACKOFF (case-sensitive).\n",
    )


def test_missing_required_field(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/eh.yaml": """\
                apiVersion: metasync/v1
                kind: EventHandler
                metadata: {name: eh}
                spec:
                  active: true
                  actions:
                    - action: complete_task
                      complete_task: {workflowId: "${workflowId}"}
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/eh.yaml:4 event: missing required field 'event'\n  Add `event:`.\n",
    )


def test_workflow_without_tasks(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: WorkflowDef
                metadata: {name: wf}
                spec:
                  ownerEmail: ((vars.owner_email))
                  tasks: []
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/wf.yaml:6 tasks: the workflow has no tasks; Conductor requires at "
        "least one\n  Add a task under tasks:.\n",
    )


def test_duplicate_task_reference_inside_fork_branches(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: WorkflowDef
                metadata: {name: wf}
                spec:
                  ownerEmail: ((vars.owner_email))
                  tasks:
                    - name: fork
                      taskReferenceName: fork
                      type: FORK_JOIN
                      forkTasks:
                        - - {name: a, taskReferenceName: step, type: INLINE}
                        - - name: b
                            taskReferenceName: step
                            type: INLINE
                    - {name: join, taskReferenceName: join, type: JOIN, joinOn: [step]}
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/wf.yaml:13 tasks[ref=step].taskReferenceName: taskReferenceName 'step' "
        "is used more than once (first at line 11); it must be unique across the whole workflow, "
        "at every depth\n  Rename one of them.\n",
    )


def test_undefined_variable(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/td.yaml": """\
                apiVersion: metasync/v1
                kind: TaskDef
                metadata: {name: td}
                spec:
                  ownerEmail: ((vars.owner_emial))
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/td.yaml:5 ownerEmail: undefined variable ((vars.owner_emial)) for "
        "environment 'dev'\n"
        "  Define it under `vars:` in environments/dev/environment.yaml; did you mean "
        "'owner_email'?\n",
    )


def test_unknown_kind(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: Workflow
                metadata: {name: wf}
                spec: {}
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/wf.yaml:2 kind: unknown kind 'Workflow'; did you mean 'WorkflowDef'?\n"
        "  kind is one of: TaskDef, WorkflowDef, EventHandler, WorkflowSchedule, WorkflowTest.\n",
    )


def test_metadata_name_differs_from_spec_name(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/td.yaml": """\
                apiVersion: metasync/v1
                kind: TaskDef
                metadata: {name: charge}
                spec:
                  name: charge_payment
                  ownerEmail: ((vars.owner_email))
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/td.yaml:5 spec.name: metadata.name 'charge' differs from spec.name "
        "'charge_payment'\n"
        "  They name the same resource: make them equal, or drop spec.name.\n",
    )


def test_same_resource_in_two_files_names_both(tmp_path: Path) -> None:
    taskdef = """\
        apiVersion: metasync/v1
        kind: TaskDef
        metadata: {name: charge}
        spec:
          ownerEmail: ((vars.owner_email))
        """
    write_project(
        tmp_path,
        {"manifests/a.yaml": taskdef, "manifests/more/b.yaml": "# again\n---\n" + taskdef},
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/more/b.yaml:5 metadata.name: TaskDef charge is defined twice: here and "
        "at manifests/a.yaml:3\n"
        "  Keep one definition (a workflow's identity is its name and version).\n",
    )


def test_same_workflow_name_with_two_versions_is_fine(tmp_path: Path) -> None:
    workflow = """\
        apiVersion: metasync/v1
        kind: WorkflowDef
        metadata: {{name: wf}}
        spec:
          version: {version}
          ownerEmail: ((vars.owner_email))
          tasks: [{{name: a, taskReferenceName: a, type: INLINE}}]
        """
    write_project(
        tmp_path,
        {
            "manifests/v1.yaml": workflow.format(version=1),
            "manifests/v2.yaml": workflow.format(version=2),
        },
    )
    code, stdout, _ = validate(tmp_path)
    assert (code, stdout) == (0, "valid: 2 resources for dev (0 warning(s))\n")


def test_switch_without_expression(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/wf.yaml": """\
                apiVersion: metasync/v1
                kind: WorkflowDef
                metadata: {name: wf}
                spec:
                  ownerEmail: ((vars.owner_email))
                  tasks:
                    - name: route
                      taskReferenceName: route
                      type: SWITCH
                      evaluatorType: value-param
                      decisionCases:
                        a: [{name: x, taskReferenceName: x, type: INLINE}]
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/wf.yaml:7 tasks[ref=route]: SWITCH task needs an expression (the value "
        "or script that picks the case)\n"
        "  Add `expression:` to task 'route'.\n",
    )


def test_binary_file_with_a_yaml_name(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"
    write_project(tmp_path, {"manifests/logo.yaml": png})
    assert_fails_with(
        tmp_path,
        "error: manifests/logo.yaml:3: not a text file (it contains NUL bytes); a manifest must "
        "be UTF-8 YAML\n"
        "  Remove the file or give it a name that does not end in .yaml/.yml.\n",
    )


def test_latin1_file_is_refused_with_its_line(tmp_path: Path) -> None:
    write_project(tmp_path, {"manifests/td.yaml": b"apiVersion: metasync/v1\n# caf\xe9\n"})
    assert_fails_with(
        tmp_path,
        "error: manifests/td.yaml:2: not valid UTF-8 (byte 0xe9 at offset 29); a manifest must "
        "be UTF-8 YAML\n"
        "  Re-save the file as UTF-8, or remove it if it is not a manifest.\n",
    )


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/td.yaml": """\
                apiVersion: metasync/v1
                kind: TaskDef
                metadata: {name: td}
                spec:
                  ownerEmail: ((vars.owner_email))
                  retryCount: 1
                  retryCount: 2
                """
        },
    )
    assert_fails_with(
        tmp_path,
        "error: manifests/td.yaml:7:3: invalid YAML: duplicate key 'retryCount' (first at line 6); "
        "a key may appear once per mapping\n  7 |   retryCount: 2\n    |   ^\n  Keep one of the two.\n",
    )


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        (
            "kind: TaskDef\nmetadata: {name: td}\nspec: {}\n",
            "error: manifests/td.yaml:1: missing apiVersion\n  Use `apiVersion: metasync/v1`.\n",
        ),
        (
            "apiVersion: metasync/v2\nkind: TaskDef\nmetadata: {name: td}\nspec: {}\n",
            "error: manifests/td.yaml:1 apiVersion: unsupported apiVersion 'metasync/v2'\n"
            "  Use `apiVersion: metasync/v1`.\n",
        ),
        (
            "apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {name: td}\nspecs: {}\n",
            "error: manifests/td.yaml:4 specs: unknown field 'specs'; did you mean 'spec'?\n"
            "  A manifest document has apiVersion, kind, metadata and spec; Conductor fields go "
            "under spec.\n"
            "error: manifests/td.yaml:1 spec: missing spec\n"
            "  spec holds the Conductor object, with Conductor's field names.\n",
        ),
        (
            "apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {name: td, lables: {}}\nspec: {}\n",
            "error: manifests/td.yaml:3 metadata.lables: unknown field 'lables'; did you mean "
            "'labels'?\n  metadata has name and labels.\n",
        ),
    ],
)
def test_envelope_errors(tmp_path: Path, envelope: str, expected: str) -> None:
    write_project(tmp_path, {"manifests/td.yaml": envelope})
    assert_fails_with(tmp_path, expected, errors=expected.count("error: "))


def test_every_error_is_reported_in_one_run(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "manifests/a.yaml": "apiVersion: metasync/v1\nkind: Taskdef\nmetadata: {name: a}\nspec: {}\n",
            "manifests/b.yaml": "key: [unclosed\n",
        },
    )
    code, _, stderr = validate(tmp_path)
    assert code == 1
    assert "manifests/a.yaml:2 kind: unknown kind 'Taskdef'; did you mean 'TaskDef'?" in stderr
    assert (
        "manifests/b.yaml:1:6: the [ opened here is never closed\n  1 | key: [unclosed\n" in stderr
    )
    assert stderr.endswith("invalid: 2 error(s), 0 warning(s) (dev)\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "apiVersion: metasync/v1\nkind: TaskDef\nmetadata:\n\tname: t\n",
            "error: manifests/t.yaml:4:1: a tab character indents this line; YAML indents with "
            "spaces\n"
            "  4 | →name: t\n"
            "    | ^\n"
            "  Replace the tab with spaces (as many as the lines around it use).\n",
            id="tab",
        ),
        pytest.param(
            "apiVersion: metasync/v1\nkind: TaskDef\nmetadata:\n  name: t\nspec:\n  a: 1\n \t b: 2\n",
            "error: manifests/t.yaml:7:2: a tab character indents this line; YAML indents with "
            "spaces\n"
            "  7 |  → b: 2\n"
            "    |  ^\n"
            "  Replace the tab with spaces (as many as the lines around it use).\n",
            id="tab-after-spaces",
        ),
        pytest.param(
            "apiVersion: metasync/v1\nkind: 'TaskDef\nmetadata: {name: t}\n",
            "error: manifests/t.yaml:2:7: this quoted value is never closed: its ' runs to the end "
            "of the file\n"
            "  2 | kind: 'TaskDef\n"
            "    |       ^\n"
            "  Close it with ' on this line (a ' inside the value is written '').\n",
            id="unclosed-quote",
        ),
        pytest.param(
            "apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {name: t\nspec: {}\n",
            "error: manifests/t.yaml:4:5: the { opened at line 3 column 11 is not closed before "
            "this: YAML expected ',' or '}' here\n"
            "  4 | spec: {}\n"
            "    |     ^\n"
            "  Close it with }, or separate its items with commas.\n",
            id="unclosed-brace",
        ),
        pytest.param(
            "apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {name: t}\nspec: {inputKeys: [a, b\n",
            "error: manifests/t.yaml:4:19: the [ opened here is never closed\n"
            "  4 | spec: {inputKeys: [a, b\n"
            "    |                   ^\n"
            "  Close it with ].\n",
            id="unclosed-bracket",
        ),
        pytest.param(
            "apiVersion: metasync/v1\nkind: TaskDef\nmetadata:\n    name: t\n  spec: {}\n",
            "error: manifests/t.yaml:5:3: this line's indentation matches no key of the mapping "
            "that starts at line 1\n"
            "  5 |   spec: {}\n"
            "    |   ^\n"
            "  Indent it as far as the keys it belongs with (YAML nests by indentation).\n",
            id="bad-indent",
        ),
    ],
)
def test_yaml_errors_show_line_column_and_the_source_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    write_project(tmp_path, {"manifests/t.yaml": text})
    assert_fails_with(tmp_path, expected)


BOMB = """\
    apiVersion: metasync/v1
    kind: WorkflowDef
    metadata: {name: bomb}
    spec:
      ownerEmail: ((vars.owner_email))
      variables:
        a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
        h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
        i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
      tasks: [{name: a, taskReferenceName: a, type: WAIT}]
    """


def test_an_alias_bomb_is_refused_at_its_document(tmp_path: Path) -> None:
    write_project(tmp_path, {"manifests/ok.yaml": "", "manifests/bomb.yaml": BOMB})
    assert_fails_with(
        tmp_path,
        "error: manifests/bomb.yaml:1: this document's aliases expand to more than 1,000,000 "
        "values\n  Write the values out, or nest fewer aliases (an alias bomb is refused).\n",
    )


def test_a_recursive_alias_is_refused_and_ordinary_aliases_are_fine(tmp_path: Path) -> None:
    shared = """\
        apiVersion: metasync/v1
        kind: WorkflowDef
        metadata: {name: shared}
        spec:
          ownerEmail: ((vars.owner_email))
          inputTemplate: {retry: &retry {count: 3, delay: 5}}
          variables: {again: *retry}
          tasks: [{name: a, taskReferenceName: a, type: WAIT}]
        """
    write_project(tmp_path, {"manifests/shared.yaml": shared})
    code, _, stderr = validate(tmp_path)
    assert code == 0, stderr
    (tmp_path / "manifests" / "loop.yaml").write_text(
        "apiVersion: metasync/v1\nkind: WorkflowDef\nmetadata: {name: loop}\nspec:\n"
        "  variables: &v {self: *v}\n  tasks: [{name: a, taskReferenceName: a}]\n"
    )
    code, _, stderr = validate(tmp_path)
    assert code == 1
    assert "manifests/loop.yaml:5: an alias refers to a value that contains it" in stderr
