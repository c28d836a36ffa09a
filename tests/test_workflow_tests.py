"""`metasync test`: WorkflowTest manifests run by real servers of both flavours, judged, and leaving
nothing behind."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmlschema

import conductor_server
from helpers import ROOT, run_cli, write_project

pytestmark = pytest.mark.server


def environment(url: str) -> str:
    return f"server: {{url: {url}}}\nvars: {{owner_email: team@example.com}}\n"


def workflow(name: str, tasks: str, extra: str = "") -> str:
    body = "\n".join("    " + line for line in tasks.strip("\n").splitlines())
    return (
        "apiVersion: metasync/v1\nkind: WorkflowDef\n"
        f"metadata: {{name: {name}}}\nspec:\n  version: 1\n  ownerEmail: team@example.com\n"
        f"{extra}  tasks:\n{body}\n"
    )


def spec_doc(name: str, spec: str) -> str:
    body = "\n".join("  " + line for line in spec.strip("\n").splitlines())
    return (
        f"apiVersion: metasync/v1\nkind: WorkflowTest\nmetadata: {{name: {name}}}\nspec:\n{body}\n"
    )


def run(project: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("--project", str(project), "test", "--env", "dev", *args)
    return result.exit_code, result.stdout, result.stderr


def report(project: Path, *args: str) -> dict[str, Any]:
    code, out, err = run(project, "-o", "json", *args)
    assert code in (0, 1), err
    document: dict[str, Any] = json.loads(out)
    return document


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in document["tests"]}


SWITCH = """
- name: route
  taskReferenceName: route
  type: SWITCH
  evaluatorType: {evaluator}
  expression: kind
  inputParameters: {{kind: "${{workflow.input.kind}}"}}
  decisionCases:
    big: [{{name: {p}charge, taskReferenceName: charge, type: SIMPLE}}]
  defaultCase:
    - {{name: small, taskReferenceName: small, type: SET_VARIABLE, inputParameters: {{size: small}}}}
"""

FORK = """
- name: fork
  taskReferenceName: fork
  type: FORK_JOIN
  forkTasks:
    - [{{name: {p}charge, taskReferenceName: b1, type: SIMPLE}}]
    - [{{name: {p}charge, taskReferenceName: b2, type: SIMPLE}}]
- {{name: join, taskReferenceName: join, type: JOIN, joinOn: [b1, {second}]}}
"""

INLINE = """
- name: calc
  taskReferenceName: calc
  type: INLINE
  inputParameters: {{evaluatorType: {evaluator}, expression: "(function () {{ return 6 * 7; }})()"}}
"""


def broken_project(root: Path, prefix: str, url: str, *, fixed: bool) -> Path:
    taskdef = (
        f"apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {{name: {prefix}charge}}\n"
        "spec: {ownerEmail: team@example.com, retryCount: 0}\n"
    )
    files = {
        "manifests/taskdefs.yaml": taskdef,
        "manifests/switch.yaml": workflow(
            f"{prefix}route",
            SWITCH.format(p=prefix, evaluator="value-param" if fixed else "value_param"),
        ),
        "manifests/fork.yaml": workflow(
            f"{prefix}fork", FORK.format(p=prefix, second="b2" if fixed else "b_2")
        ),
        "manifests/inline.yaml": workflow(
            f"{prefix}inline", INLINE.format(evaluator="javascript" if fixed else "graaljs")
        ),
        "manifests/tests.yaml": "---\n".join(
            [
                spec_doc(
                    "big_orders_are_charged",
                    f"""
workflow: {prefix}route
input: {{kind: big}}
mocks: {{charge: {{output: {{id: c-1}}}}}}
expect: {{path: {{route: big}}, tasks: [route, charge]}}
""",
                ),
                spec_doc(
                    "both_branches_are_joined",
                    f"""
workflow: {prefix}fork
mocks: {{b1: {{output: {{}}}}, b2: {{output: {{}}}}}}
expect: {{tasks: [fork, b1, b2, join]}}
""",
                ),
                spec_doc(
                    "the_answer_is_computed",
                    f"""
workflow: {prefix}inline
expect: {{taskOutput: {{calc: {{result: 42}}}}}}
""",
                ),
            ]
        ),
    }
    return write_project(root, files, environment(url))


def test_definitions_every_run_would_fail_are_caught_by_a_test_naming_the_task(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, flavour: str
) -> None:
    """A SWITCH with evaluatorType value_param and a JOIN on a misspelt reference are accepted by
    both servers (and INLINE with graaljs by 3.15); every execution then fails or hangs."""
    project = broken_project(tmp_path / "broken", prefix, conductor.url, fixed=False)
    assert run_cli("--project", str(project), "validate").exit_code == 0  # validate lets them by
    started = time.monotonic()
    code, out, _ = run(project)
    assert code == 1
    assert time.monotonic() - started < 20  # judged at once, not after a hang
    assert "FAIL big_orders_are_charged" in out
    assert (
        "- the workflow ended FAILED, expected COMPLETED: route (SWITCH): No evaluator registered "
        "for type: value_param" in out
    )
    assert "FAIL both_branches_are_joined" in out
    assert (
        f"- join (JOIN) waits for 'b_2', which no task of {prefix}fork has: it would wait for "
        "ever; did you mean 'b2'?" in out
    )
    if flavour == "3.15":  # conductor-oss runs graaljs
        assert "FAIL the_answer_is_computed" in out
        assert (
            "- the workflow ended FAILED, expected COMPLETED: calc (INLINE) "
            "FAILED_WITH_TERMINAL_ERROR: Unknown evaluator 'graaljs' in INLINE task." in out
        )
    else:
        assert "PASS the_answer_is_computed" in out

    fixed = broken_project(tmp_path / "fixed", prefix, conductor.url, fixed=True)
    code, out, err = run(fixed)
    assert code == 0, out + err
    assert out.count("PASS ") == 3
    assert "3 passed, 0 failed" in out


def test_a_wrong_reference_in_a_tasks_input_is_caught_by_an_input_expectation(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    tasks = f"""
- name: {prefix}charge
  taskReferenceName: charge
  type: SIMPLE
  inputParameters: {{amount: "${{workflow.input.amont}}", currency: "${{workflow.input.currency}}"}}
"""
    files = {
        "manifests/wf.yaml": workflow(f"{prefix}pay", tasks, "  inputParameters: [amount, currency]\n"),
        "manifests/test.yaml": spec_doc("the_amount_reaches_the_charge", f"""
workflow: {prefix}pay
input: {{amount: 120, currency: EUR}}
mocks: {{charge: {{output: {{id: c-1}}}}}}
expect: {{input: {{charge: {{currency: EUR, amount: 120}}}}}}
"""),
    }  # fmt: skip
    project = write_project(tmp_path, files, environment(conductor.url))
    code, out, _ = run(project)
    assert code == 1
    assert (
        "- charge input.amount: expected 120, got None (inputParameters.amount is "
        "'${workflow.input.amont}')" in out
    )
    assert "manifests/test.yaml:5" in out  # the test's own line


RETRIES_AND_LOOPS = """
- name: {p}charge
  taskReferenceName: charge
  type: SIMPLE
- name: lines
  taskReferenceName: lines
  type: DO_WHILE
  inputParameters: {{count: "${{workflow.input.count}}"}}
  loopCondition: "if ($.lines['iteration'] < $.count) {{ true; }} else {{ false; }}"
  loopOver:
    - {{name: {p}pick, taskReferenceName: pick, type: SIMPLE, inputParameters: {{line: "${{lines.output.iteration}}"}}}}
- name: outcome
  taskReferenceName: outcome
  type: SWITCH
  evaluatorType: javascript
  expression: "$.id ? 'charged' : 'unpaid'"
  inputParameters: {{id: "${{charge.output.id}}"}}
  decisionCases:
    charged: [{{name: done, taskReferenceName: done, type: SET_VARIABLE, inputParameters: {{paid: true}}}}]
"""


def loop_project(root: Path, prefix: str, url: str, tests: list[str]) -> Path:
    taskdefs = "---\n".join(
        f"apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {{name: {prefix}{name}}}\n"
        f"spec: {{ownerEmail: team@example.com, retryCount: {retries}, retryDelaySeconds: 0}}\n"
        for name, retries in (("charge", 1), ("pick", 0))
    )
    files = {
        "manifests/taskdefs.yaml": taskdefs,
        "manifests/wf.yaml": workflow(
            f"{prefix}order", RETRIES_AND_LOOPS.format(p=prefix),
            "  inputParameters: [count]\n  outputParameters: {charged: '${charge.output.id}'}\n",
        ),
        "manifests/tests.yaml": "---\n".join(tests),
    }  # fmt: skip
    return write_project(root, files, environment(url))


def test_retries_loops_and_switch_paths_run_for_real(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    passing = spec_doc("a_declined_charge_is_retried", f"""
workflow: {prefix}order
input: {{count: 3}}
mocks:
  charge: [{{status: FAILED, output: {{error: declined}}}}, {{output: {{id: c-9}}}}]
  pick: {{output: {{picked: true}}}}
expect:
  output: {{charged: {{$regex: '^c-[0-9]+$'}}, missing: {{$exists: false}}}}
  tasks: [charge, lines, pick, outcome, done]
  iterations: {{lines: 3}}
  path: {{outcome: charged}}
  input: {{pick__2: {{line: 2}}, pick: {{line: 3}}}}
  notRan: [nothing_else]
""")  # fmt: skip
    failing = spec_doc("a_wrong_expectation_says_where", f"""
workflow: {prefix}order
input: {{count: 2}}
mocks:
  charge: {{output: {{}}}}
  pick__1: {{output: {{}}}}
  pick__2: {{output: {{}}}}
expect:
  iterations: {{lines: 3}}
  path: {{outcome: charged}}
""")  # fmt: skip
    project = loop_project(tmp_path / "p", prefix, conductor.url, [passing, failing])
    # notRan names a reference the workflow does not have: validate says so first
    code = run_cli("--project", str(project), "validate").exit_code
    assert code == 1
    project = loop_project(
        tmp_path / "q", prefix, conductor.url, [passing.replace("nothing_else", "done"), failing]
    )
    document = report(project)
    tests = by_name(document)
    assert tests["a_declined_charge_is_retried"]["outcome"] == "failed"  # done ran: notRan says no
    assert tests["a_declined_charge_is_retried"]["failures"] == ["done ran, expected it not to"]
    assert tests["a_declined_charge_is_retried"]["path"] == [
        "charge x2", "lines(3 iterations)", "pick__1", "pick__2", "pick__3", "outcome[charged]", "done",
    ]  # fmt: skip
    assert tests["a_wrong_expectation_says_where"]["failures"] == [
        "outcome (SWITCH) took 'unpaid' (defaultCase), expected 'charged'",
        "lines (DO_WHILE) ran 2 iteration(s), expected 3",
    ]
    assert document["summary"] == {"passed": 0, "failed": 2, "error": 0}


def test_a_task_with_no_mock_is_named_at_once_not_after_the_timeout(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    test = spec_doc("charge_has_no_mock", f"workflow: {prefix}order\ninput: {{count: 1}}\n")
    project = loop_project(tmp_path, prefix, conductor.url, [test])
    started = time.monotonic()
    code, out, _ = run(project)
    assert code == 1
    assert time.monotonic() - started < 10
    assert (
        f"- charge ({prefix}charge) waits for a worker: the test has no mock for it (add "
        "mocks: {charge: {output: ...}})" in out
    )
    retried = spec_doc("one_attempt_mocked", f"""
workflow: {prefix}order
input: {{count: 1}}
mocks: {{charge: {{status: FAILED}}, pick: {{}}}}
""")  # fmt: skip
    project = loop_project(tmp_path / "again", prefix, conductor.url, [retried])
    code, out, _ = run(project)
    assert (
        f"- charge ({prefix}charge) attempt 2 waits for a worker: the test mocks 1 attempt(s)"
        in out
    )


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP endpoint that records every request it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()


def test_a_test_never_calls_out(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server,
    listener: tuple[str, list[str]],
) -> None:  # fmt: skip
    """Mocking an HTTP task is not enough (the server's system-task worker races the mock and
    sometimes sends the request first): a test sends a stand-in that only the mock completes."""
    url, hits = listener
    tasks = f"""
- name: notify
  taskReferenceName: notify
  type: HTTP
  inputParameters:
    http_request: {{uri: "{url}/v1/notify", method: POST, body: {{order: "${{workflow.input.order}}"}}}}
- {{name: shipped, taskReferenceName: shipped, type: EVENT, sink: conductor}}
"""
    mocked = [
        spec_doc(
            f"notified_{i}",
            f"""
workflow: {prefix}notify
input: {{order: o-{i}}}
mocks: {{notify: {{output: {{response: {{statusCode: 202}}}}}}, shipped: {{}}}}
expect: {{input: {{notify: {{http_request: {{body: {{order: o-{i}}}}}}}}}}}
""",
        )
        for i in range(12)
    ]
    unmocked = spec_doc("not_mocked", f"workflow: {prefix}notify\nmocks: {{shipped: {{}}}}\n")
    files = {"manifests/wf.yaml": workflow(f"{prefix}notify", tasks),
             "manifests/tests.yaml": "---\n".join([*mocked, unmocked])}  # fmt: skip
    project = write_project(tmp_path, files, environment(conductor.url))
    code, out, _ = run(project, "--jobs", "4")
    assert code == 1
    assert out.count("PASS notified_") == 12
    assert (
        "- notify (HTTP) reaches outside the server, and a test never does: mock it "
        "(mocks: {notify: {output: ...}})" in out
    )
    time.sleep(1)  # a system-task worker that had taken one would have sent it by now
    assert hits == []


def parent_and_child(prefix: str, *, pause: bool) -> str:
    """Workflow ``parent`` runs ``child`` (one worker task, charge) as a sub-workflow, then
    waits a minute when ``pause``."""
    child = workflow(
        f"{prefix}child", f"- {{name: {prefix}charge, taskReferenceName: charge, type: SIMPLE}}"
    )
    tasks = f"""
- name: child
  taskReferenceName: child
  type: SUB_WORKFLOW
  subWorkflowParam: {{name: {prefix}child, version: 1}}
"""  # fmt: skip
    if pause:
        tasks += '- {name: pause, taskReferenceName: pause, type: WAIT, inputParameters: {duration: "60 seconds"}}\n'
    return child + "---\n" + workflow(f"{prefix}parent", tasks)


def test_nothing_is_left_on_the_server(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    """Nothing is registered; every execution (sub-workflows too) is removed, passed or not."""
    tests = [
        spec_doc(
            "passes",
            f"workflow: {prefix}parent\nmocks: {{child/charge: {{output: {{id: c-1}}}}, pause: {{}}}}\n"
            "expect: {ran: [child/charge], taskOutput: {child/charge: {id: c-1}}}\n",
        ),
        spec_doc(
            "looks_inside",
            f"workflow: {prefix}parent\nmocks: {{child/charge: {{}}, pause: {{}}}}\n"
            "expect: {notRan: [child/charge]}\n",
        ),
        spec_doc("hangs", f"workflow: {prefix}parent\nmocks: {{child/charge: {{}}}}\ntimeoutSeconds: 6\n"),
        spec_doc(
            "fails",
            f"workflow: {prefix}parent\n"
            "mocks: {child/charge: {status: FAILED_WITH_TERMINAL_ERROR}}\n",
        ),
    ]  # fmt: skip
    files = {"manifests/a.yaml": parent_and_child(prefix, pause=True),
             "manifests/t.yaml": "---\n".join(tests)}  # fmt: skip
    project = write_project(tmp_path, files, environment(conductor.url))

    def listing() -> Any:
        return [
            api.get(path).json() for path in ("/metadata/workflow", "/metadata/taskdefs", "/event")
        ]

    before = listing()
    document = report(project)
    outcomes = {t["name"]: (t["outcome"], t["failures"][:1]) for t in document["tests"]}
    assert outcomes["passes"] == ("passed", [])
    assert outcomes["looks_inside"] == ("failed", ["child/charge ran, expected it not to"])
    assert outcomes["hangs"][0] == "failed"
    assert outcomes["hangs"][1][0].startswith("still RUNNING after 6 s: waiting on ")
    assert "pause (WAIT, IN_PROGRESS)" in outcomes["hangs"][1][0]
    assert outcomes["fails"][0] == "failed"
    executions = [e for t in document["tests"] for e in t["executions"]]
    assert len(executions) == 8  # each test's workflow and its sub-workflow
    for execution in executions:
        left = api.get(f"/workflow/{execution}")
        assert left.status_code == 404, (
            left.json()["workflowName"],
            left.json()["status"],
            outcomes,
        )
    for name in (f"metasync_test_{prefix}parent", f"metasync_test_{prefix}child", f"{prefix}child"):
        assert api.get(f"/workflow/running/{name}").json() == []
    assert listing() == before


def test_a_failing_test_starts_no_failure_workflow(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    compensate = workflow(
        f"{prefix}compensate",
        f"- {{name: {prefix}refund, taskReferenceName: refund, type: SIMPLE}}",
    )
    fails = workflow(
        f"{prefix}order",
        "- {name: stop, taskReferenceName: stop, type: TERMINATE, "
        "inputParameters: {terminationStatus: FAILED, terminationReason: out of stock}}",
        f"  failureWorkflow: {prefix}compensate\n",
    )  # fmt: skip
    test = spec_doc(
        "out_of_stock",
        f"workflow: {prefix}order\nexpect: {{status: FAILED, reason: out of stock}}\n",
    )
    files = {"manifests/a.yaml": compensate + "---\n" + fails, "manifests/t.yaml": test}
    project = write_project(tmp_path, files, environment(conductor.url))
    applied = run_cli("--project", str(project), "apply", "--env", "dev", "--auto-approve")
    assert applied.exit_code == 0, applied.stdout + applied.stderr  # the real one is there
    code, out, _ = run(project)
    assert code == 0, out
    time.sleep(1)
    assert api.get(f"/workflow/running/{prefix}compensate").json() == []


def test_a_mock_of_a_task_another_environment_adds_is_a_warning(tmp_path: Path) -> None:
    files = {
        "manifests/wf.yaml": workflow("pay", "- {name: charge, taskReferenceName: charge, type: SIMPLE}"),
        "manifests/t.yaml": spec_doc("qa_notice", "workflow: pay\nmocks: {charge: {}, notify_qa: {}}\n"),
    }  # fmt: skip
    project = write_project(tmp_path, files, environment("http://127.0.0.1:9"))
    result = run_cli("--project", str(project), "validate")
    assert result.exit_code == 0, result.stderr
    assert (
        "warning: manifests/t.yaml:6 mocks.notify_qa: WorkflowTest qa_notice: WorkflowDef pay v1 "
        "has no task 'notify_qa' in this environment" in result.stderr
    )


def test_a_sub_workflow_task_short_of_mocks_is_named_within_the_timeout(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    """The server answers such a test only after 20,000 rounds of its loop (20-45 s): the runner
    looks the execution up by its correlation id instead, and names the task."""
    taskdef = (
        f"apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {{name: {prefix}charge}}\n"
        "spec: {ownerEmail: team@example.com, retryCount: 1, retryDelaySeconds: 0}\n"
    )
    test = spec_doc("short_of_mocks", f"""
workflow: {prefix}parent
mocks: {{child/charge: {{status: FAILED}}}}
timeoutSeconds: 5
""")  # fmt: skip
    files = {"manifests/a.yaml": taskdef + "---\n" + parent_and_child(prefix, pause=False),
             "manifests/t.yaml": test}  # fmt: skip
    project = write_project(tmp_path, files, environment(conductor.url))
    started = time.monotonic()
    code, out, _ = run(project)
    assert code == 1
    assert time.monotonic() - started < 15
    assert (
        f"- child/charge ({prefix}charge) attempt 2 waits for a worker: the test mocks 1 "
        "attempt(s) (give mocks.child/charge one per attempt)" in out
    )


def test_an_interrupted_run_removes_what_it_started(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    files = {
        "manifests/wf.yaml": workflow(f"{prefix}slow", """
- {name: pause, taskReferenceName: pause, type: WAIT, inputParameters: {duration: "60 seconds"}}
"""),
        "manifests/t.yaml": "---\n".join(
            spec_doc(f"slow_{i}", f"workflow: {prefix}slow\ncorrelationId: {prefix}run\n"
                     "timeoutSeconds: 120\n")
            for i in range(3)
        ),
    }  # fmt: skip
    project = write_project(tmp_path, files, environment(conductor.url))
    metasync = Path(sys.executable).parent / "metasync"
    process = subprocess.Popen(
        [str(metasync), "--project", str(project), "test", "--env", "dev"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    name = f"metasync_test_{prefix}slow"
    deadline = time.monotonic() + 30
    while len(api.get(f"/workflow/running/{name}").json()) < 3:
        assert time.monotonic() < deadline, "the tests never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert api.get(f"/workflow/running/{name}").json() == []
    closed = api.get(
        f"/workflow/{name}/correlated/{prefix}run?includeClosed=true&includeTasks=false"
    )
    assert closed.json() == []


def test_junit_output_is_valid_junit(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    test = spec_doc("charge_has_no_mock", f"workflow: {prefix}order\ninput: {{count: 1}}\n")
    ok = spec_doc(
        "charged",
        f"workflow: {prefix}order\ninput: {{count: 0}}\nmocks: {{charge: {{}}, pick: {{}}}}\n",
    )
    project = loop_project(tmp_path, prefix, conductor.url, [test, ok])
    code, out, _ = run(project, "-o", "junit")
    assert code == 1
    schema = xmlschema.XMLSchema(ROOT / "tests" / "junit.xsd")
    schema.validate(out)  # raises with the first violation
    tree: Any = schema.to_dict(out)
    assert tree["@tests"] == 2
    assert tree["@failures"] == 1
    cases = {c["@name"]: c for c in tree["testsuite"][0]["testcase"]}
    assert "failure" not in cases["charged"]
    assert cases["charge_has_no_mock"]["failure"]["@message"].startswith("charge (")
    assert cases["charge_has_no_mock"]["@file"] == "manifests/tests.yaml"


def test_the_example_passes_its_own_tests_on_both_flavours(
    tmp_path: Path, conductor: conductor_server.Server
) -> None:
    code, out, err = run(ROOT, "--server", conductor.url)
    assert code == 0, out + err
    assert " 0 failed" in out


def test_tests_that_name_what_is_not_there_are_refused_offline(tmp_path: Path) -> None:
    files = {
        "manifests/wf.yaml": workflow("pay", "- {name: charge, taskReferenceName: charge, type: SIMPLE}"),
        "manifests/t.yaml": "---\n".join([
            spec_doc("wrong_workflow", "workflow: pya\n"),
            spec_doc("wrong_ref", "workflow: pay\nmocks: {chrage: {}}\nexpect: {tasks: [charge, refund]}\n"),
        ]),
    }  # fmt: skip
    project = write_project(tmp_path, files, environment("http://127.0.0.1:9"))
    result = run_cli("--project", str(project), "validate")
    assert result.exit_code == 1
    assert (
        "manifests/t.yaml:5 workflow: WorkflowTest wrong_workflow: no workflow pya in git; did you "
        "mean 'pay'?" in result.stderr
    )
    assert (
        "WorkflowDef pay v1 has no task 'chrage' in this environment; did you mean 'charge'?"
        in (result.stderr)
    )
    assert "WorkflowDef pay v1 has no task 'refund'" in result.stderr
    empty = write_project(tmp_path / "none", {"manifests/wf.yaml": workflow("pay", "- {name: c, taskReferenceName: c}")},
                          environment("http://127.0.0.1:9"))  # fmt: skip
    code, _, err = run(empty)
    assert code == 1
    assert "error: manifests/: no WorkflowTest in the project for dev" in err


def test_a_test_generated_from_a_real_execution_pins_what_it_did(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    """A real run (its worker failing once, then answering), turned into a test that passes."""
    project = loop_project(tmp_path, prefix, conductor.url, [])
    applied = run_cli("--project", str(project), "apply", "--env", "dev", "--auto-approve")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    started = api.post(f"/workflow/{prefix}order", json={"count": 2})
    assert started.status_code == 200, started.text
    execution = started.text.strip()

    def work(task_type: str, status: str, output: dict[str, Any]) -> None:
        deadline = time.monotonic() + 20
        while True:
            polled = api.get(f"/tasks/poll/{task_type}", params={"workerid": "pytest"})
            if polled.status_code == 200 and polled.text.strip():
                break
            assert time.monotonic() < deadline, f"no {task_type} task to work on"
            time.sleep(0.2)
        task = polled.json()
        result = {"workflowInstanceId": execution, "taskId": task["taskId"], "status": status,
                  "outputData": output}  # fmt: skip
        assert api.post("/tasks", json=result).status_code == 200

    try:
        work(f"{prefix}charge", "FAILED", {"error": "declined"})
        work(f"{prefix}charge", "COMPLETED", {"id": "c-5"})
        work(f"{prefix}pick", "COMPLETED", {"picked": 1})
        work(f"{prefix}pick", "COMPLETED", {"picked": 2})
        deadline = time.monotonic() + 20
        while api.get(f"/workflow/{execution}").json()["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        out = project / "manifests" / "generated.yaml"
        code, _, err = run(project, "--generate", "charged_after_a_decline", "--execution",
                           execution, "--out", str(out))  # fmt: skip
        assert code == 0, err
        generated = out.read_text()
        assert generated.startswith(
            f"# Generated by `metasync test --generate` from execution {execution}"
        )
        assert "  - status: FAILED\n" in generated  # the first attempt, then the second
        code, _, err = run(project, "--generate", "x", "--execution", execution, "--out", str(out))
        assert code == 1
        assert f"{out} exists: a generated test never overwrites a file" in err
        document = report(project)
        assert document["tests"][0]["outcome"] == "passed", document
        assert document["tests"][0]["path"] == [
            "charge x2", "lines(2 iterations)", "pick__1", "pick__2", "outcome[charged]", "done",
        ]  # fmt: skip
    finally:
        api.delete(f"/workflow/{execution}/remove")


def test_the_readme_example_passes(tmp_path: Path, conductor: conductor_server.Server) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Workflow tests") :]
    example = section[
        section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml"))
    ]
    project = tmp_path / "project"
    for part in ("manifests", "environments"):
        shutil.copytree(ROOT / part, project / part)
    shutil.rmtree(project / "manifests" / "tests")
    (project / "metasync.yaml").write_text("name: readme\n")
    (project / "manifests" / "readme.yaml").write_text(example)
    code, out, err = run(project, "--server", conductor.url)
    assert code == 0, out + err
    assert "PASS failed_capture_is_retried (payment_processing v1)" in out


def test_a_sub_workflow_runs_the_version_its_task_names() -> None:
    """Under policy new-version git may hold several versions: the one the task pins is sent."""
    from metasync.model.resource import Resource
    from metasync.model.workflow_test import WorkflowTestSpec
    from metasync.testing.request import build

    def child(version: int, ref: str) -> Resource:
        spec = {
            "name": "child",
            "version": version,
            "tasks": [{"name": "w", "taskReferenceName": ref}],
        }
        return Resource("WorkflowDef", "child", version, spec)

    parent = Resource("WorkflowDef", "parent", 1, {"name": "parent", "version": 1, "tasks": [
        {"name": "c", "taskReferenceName": "c", "type": "SUB_WORKFLOW",
         "subWorkflowParam": {"name": "child", "version": 1}},
        {"name": "d", "taskReferenceName": "d", "type": "SUB_WORKFLOW",
         "subWorkflowParam": {"name": "child"}},
    ]})  # fmt: skip
    spec = WorkflowTestSpec.model_validate({"name": "t", "workflow": "parent"})
    request, refused = build(spec, parent, [child(1, "old"), child(2, "new"), parent], {}, "run")
    assert refused == []
    tasks = request["workflowDef"]["tasks"]
    sent = {t["taskReferenceName"]: t["subWorkflowParam"]["workflowDefinition"] for t in tasks}
    assert sent["c"]["tasks"][0]["taskReferenceName"] == "old"  # pinned to v1
    assert sent["d"]["tasks"][0]["taskReferenceName"] == "new"  # no version: the newest
    assert [t["subWorkflowParam"]["version"] for t in tasks] == [1, 2]


def test_a_slow_answer_is_awaited_until_the_test_s_own_deadline() -> None:
    """A test request answered late whose execution cannot be found meanwhile is awaited until the
    test's deadline (it was given up 10 s after the first wait, as an error that said the test had
    not started)."""
    import time as _time
    from typing import cast

    from metasync.conductor.client import ConductorClient
    from metasync.testing.runner import _start

    class LateServer:
        label = "the slow server"

        def test_workflow(self, request: dict[str, object]) -> dict[str, object]:
            _time.sleep(11.0)
            return {"workflowId": "w-1", "status": "COMPLETED"}

        def correlated(self, name: str, correlation: str, **_: object) -> list[dict[str, object]]:
            return []  # nothing started yet

    begun = _time.monotonic()
    request = {"name": "metasync_test_wf", "correlationId": "c-1"}
    started = _start(cast(ConductorClient, LateServer()), request, 0.1, deadline=begun + 30)
    assert started == {"workflowId": "w-1", "status": "COMPLETED"}
    assert 10.5 < _time.monotonic() - begun < 15


def test_a_join_counts_as_ready_once_every_task_it_joins_has_ended() -> None:
    """3.15 checks a JOIN 0, 2, 6, 14 and 30 s after scheduling it, and evaluating the execution
    does not check it: a sub-workflow that ended just after a check kept the example's
    order_to_cash 'still RUNNING after 30 s' now and then. The runner has the server check a JOIN
    (_nudge) once every task it joins has ended, and only then (a loop's JOIN joins its own
    iteration)."""
    from metasync.testing.runner import _join_ready

    def join(*refs: str, status: str = "IN_PROGRESS", **more: object) -> dict[str, object]:
        return {"taskType": "JOIN", "status": status, "referenceTaskName": "j",
                "inputData": {"joinOn": list(refs)}, **more}  # fmt: skip

    def execution(**statuses: str) -> dict[str, object]:
        return {"tasks": [{"referenceTaskName": r, "status": s} for r, s in statuses.items()]}

    ended = execution(fulfil="COMPLETED", confirm="COMPLETED")
    assert _join_ready(join("fulfil", "confirm"), ended)
    assert _join_ready(join("fulfil", "confirm"), execution(fulfil="FAILED", confirm="CANCELED"))
    assert not _join_ready(join("fulfil", "confirm"), execution(fulfil="IN_PROGRESS",
                                                                confirm="COMPLETED"))  # fmt: skip
    assert not _join_ready(join("fulfil", "confirm"), execution(confirm="COMPLETED"))
    assert not _join_ready(join("fulfil", "confirm", status="COMPLETED"), ended)
    assert not _join_ready(join(), ended)
    assert not _join_ready({**join("fulfil"), "taskType": "SUB_WORKFLOW"}, ended)
    looped = join("pick", loopOverTask=True, iteration=2)
    assert _join_ready(looped, execution(pick__1="IN_PROGRESS", pick__2="COMPLETED"))
    assert not _join_ready(looped, execution(pick__1="COMPLETED", pick__2="SCHEDULED"))


def test_a_test_whose_answer_is_held_is_found_running_or_ended(
    conductor: conductor_server.Server,
) -> None:
    """3.15 keeps the test request open while its test loop runs and indexes no correlation id:
    the runner looked for the execution in the server's running list only, and otherwise waited
    for the answer, so an execution that had ended, or was missing from that list, was given up
    on with 'did not start within 30 s' when the loop spun on past the test's deadline (the
    example failed so once; which of the two it was is not known). It is found among the
    executions of its workflow created since the request, running or ended, and told apart from
    another test's by its input (the two here share a correlation id). The answers are held back
    (as 3.15's loop would) until both are found."""
    from metasync.conductor.client import ConductorClient
    from metasync.testing.runner import _lookup, _remove, _start

    release = threading.Event()

    class HeldAnswers(ConductorClient):
        def test_workflow(self, request: dict[str, Any]) -> dict[str, Any]:
            answer = super().test_workflow(request)
            release.wait(60)  # the server's loop "runs on"
            return answer

    definition = {"name": "metasync_test_held", "version": 2, "ownerEmail": "team@example.com",
                  "schemaVersion": 2, "tasks": [{"name": "charge", "taskReferenceName": "charge",
                                                 "type": "SIMPLE"}]}  # fmt: skip

    def request(order: str) -> dict[str, Any]:
        return {"name": "metasync_test_held", "version": 2, "correlationId": "shared",
                "input": {"orderId": order}, "workflowDef": definition,
                "taskRefToMockOutput": {"charge": [{"status": "COMPLETED",
                                                    "output": {"order": order}}]}}  # fmt: skip

    with HeldAnswers.connect(conductor.url, label="test") as client:
        found: list[dict[str, Any]] = []
        since = time.time()
        try:
            for order in ("o-1", "o-2"):
                begun = time.monotonic()
                started = _start(client, request(order), 0.5,
                                 deadline=begun + 3)  # fmt: skip
                assert time.monotonic() - begun < 5, "found, not given up on after 10 s"
                found.append(dict(started))
            first = _lookup(client, request("o-1"), since)
            assert [e["workflowId"] for e in first] == [found[0]["workflowId"]]
        finally:
            release.set()
            for execution in found:
                _remove(client, str(execution["workflowId"]))
    assert [e["input"] for e in found] == [{"orderId": "o-1"}, {"orderId": "o-2"}]
    assert found[0]["workflowId"] != found[1]["workflowId"]


@pytest.mark.server
def test_a_late_answers_lookup_reads_each_other_execution_once(
    conductor: conductor_server.Server, prefix: str
) -> None:
    """Looking for a test execution by its workflow and start time (3.15 indexes no correlation
    id) reads the other executions of that workflow once, not on every look."""
    from faultproxy import FaultProxy
    from metasync.conductor.client import ConductorClient

    name = f"{prefix}busy"
    api = httpx.Client(base_url=f"{conductor.url}/api", timeout=30)
    api.put("/metadata/workflow", json=[{
        "name": name, "version": 1, "schemaVersion": 2, "ownerEmail": "team@example.com",
        "tasks": [{"name": "wait", "taskReferenceName": "wait", "type": "WAIT"}],
    }]).raise_for_status()  # fmt: skip
    since = time.time()
    others = [
        api.post(f"/workflow/{name}", json={}, params={"correlationId": f"other-{i}"}).text
        for i in range(3)
    ]
    with FaultProxy(conductor.url) as proxy:
        client = ConductorClient.connect(proxy.url, label="the dev server")
        unlike: set[str] = set()
        for _ in range(3):
            assert client.correlated(name, "mine", since=since, unlike=unlike) == []
        reads = [s.path for s in proxy.log if s.path.startswith("/api/workflow/") and
                 s.path.rsplit("/", 1)[-1] in others]  # fmt: skip
    assert sorted(reads) == sorted(f"/api/workflow/{i}" for i in others)  # once each
    assert unlike == set(others)
    for execution in others:
        api.delete(f"/workflow/{execution}/remove", params={"archiveWorkflow": "false"})
