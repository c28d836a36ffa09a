"""The small things that surprise (issue 16, point 4): each with the behaviour it has now."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest
import yaml

import conductor_server
from faultproxy import FaultProxy
from helpers import ROOT, prefixed_example, run_cli, write_project
from metasync.apply.lock import lock_name

METASYNC = str(Path(sys.executable).parent / "metasync")
ESCAPE = "\x1b["
WRONG_TYPE = "error: manifests/wf.yaml:4 version: wrong type for version: expected an integer, got string 'one'\n"

BROKEN = {
    "manifests/wf.yaml": """\
        apiVersion: metasync/v1
        kind: WorkflowDef
        metadata: {name: wf}
        spec: {version: one, tasks: [{name: t, taskReferenceName: t, type: WAIT}]}
        """
}


def _pump(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
    for line in stream or ():
        lines.put(line)


def _drain(lines: queue.Queue[str]) -> list[str]:
    drained = []
    while not lines.empty():
        drained.append(lines.get_nowait())
    return drained


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([METASYNC, *args], cwd=cwd, env={**base, **env}, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


# -- 1. NO_COLOR and --no-color -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["validate"], {"NO_COLOR": "1"}),
        (["validate"], {"NO_COLOR": "yes please"}),
        (["--no-color", "validate"], {}),
        (["validate", "--no-color"], {}),
    ],
)
def test_no_color_means_no_escape_code_even_on_a_forced_terminal(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    write_project(tmp_path, BROKEN)
    coloured = _run(["validate"], tmp_path, FORCE_COLOR="1")
    assert coloured.returncode == 1
    assert ESCAPE in coloured.stderr  # a forced terminal is coloured: the check below can fail
    plain = _run(args, tmp_path, FORCE_COLOR="1", **env)
    assert plain.returncode == 1
    assert ESCAPE not in plain.stderr + plain.stdout
    assert plain.stderr.startswith(WRONG_TYPE)


def test_an_empty_no_color_does_not_turn_colour_off(tmp_path: Path) -> None:
    write_project(tmp_path, BROKEN)
    assert ESCAPE in _run(["validate"], tmp_path, FORCE_COLOR="1", NO_COLOR="").stderr


def test_no_color_lasts_for_its_own_run_only(tmp_path: Path) -> None:
    from metasync.render.console import color_disabled

    write_project(tmp_path, BROKEN)
    assert run_cli("--no-color", "--project", str(tmp_path), "validate").exit_code == 1
    assert not color_disabled() or os.environ.get("NO_COLOR")


# -- 2. a single-value option given twice ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["plan", "--env", "dev", "--env", "prod"],
            "Error: --env is given 2 times (dev, prod), and `metasync plan` takes one (it would "
            "silently use the last). Give --env once (these commands take several: drift, export, "
            "status, validate).\n",
        ),
        (
            ["apply", "--env=dev", "--auto-approve", "--env", "prod"],
            "Error: --env is given 2 times (dev, prod), and `metasync apply` takes one (it would "
            "silently use the last). Give --env once (these commands take several: drift, export, "
            "status, validate).\n",
        ),
        (
            ["plan", "--env", "dev", "-o", "json", "--output=text"],
            "Error: --output is given 2 times (json, text), and `metasync plan` takes one (it would "
            "silently use the last). Give --output once.\n",
        ),
        (
            ["drift", "--env", "dev", "--branch", "a", "--branch", "b"],
            "Error: --branch is given 2 times (a, b), and `metasync drift` takes one (it would "
            "silently use the last). Give --branch once.\n",
        ),
        (
            ["--project", "a", "--project", "b", "validate"],
            "Error: --project is given 2 times (a, b), and `metasync` takes one (it would silently "
            "use the last). Give --project once.\n",
        ),
        (
            ["--project", "a", "validate", "--project", "b"],
            "Error: --project is given 2 times (a, b), before and after the command. Give "
            "--project once.\n",
        ),
    ],
)
def test_a_single_value_option_given_twice_is_refused(
    tmp_path: Path, args: list[str], message: str
) -> None:
    write_project(tmp_path, {})
    result = (
        run_cli("--project", str(tmp_path), *args) if args[0] != "--project" else run_cli(*args)
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.endswith(message)


def test_the_same_value_twice_is_no_surprise(tmp_path: Path) -> None:
    write_project(tmp_path, {})
    result = run_cli("--project", str(tmp_path), "render", "--env", "dev", "--env", "dev")
    assert result.exit_code == 0, result.stderr


def test_repeatable_options_stay_repeatable(tmp_path: Path) -> None:
    write_project(tmp_path, {})
    (tmp_path / "environments" / "prod").mkdir()
    (tmp_path / "environments" / "prod" / "environment.yaml").write_text(
        "server:\n  url: http://127.0.0.1:1\n"
    )
    result = run_cli("--project", str(tmp_path), "validate", "--env", "dev", "--env", "prod")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "valid: 0 resources for dev, prod (0 warning(s))\n"


# -- 8. the pre-commit hook and a project in a subfolder -------------------------------------------


def test_validate_takes_project_after_the_command_as_pre_commit_appends_it(tmp_path: Path) -> None:
    write_project(tmp_path / "sub", BROKEN)
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    result = _run([*hook["entry"].split()[1:], "--project", "sub"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(WRONG_TYPE)
    (tmp_path / "sub" / "manifests" / "wf.yaml").unlink()
    result = _run([*hook["entry"].split()[1:], "--project", "sub"], tmp_path)
    assert (result.returncode, result.stdout) == (0, "valid: 0 resources for dev (0 warning(s))\n")


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("manifests/workflows/order.yaml", True),
        ("sub/manifests/x.yaml", True),
        ("deploy/conductor/environments/prod/environment.yaml", True),
        ("sub/metasync.yaml", True),
        ("metasync.yaml", True),
        ("src/app.py", False),
        ("docs/manifests.md", False),
    ],
)
def test_the_pre_commit_hook_sees_projects_in_subfolders(path: str, matches: bool) -> None:
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert bool(re.search(hook["files"], path)) is matches


# -- 3. a selection that matches nothing -----------------------------------------------------------

NOTHING_HINT = (
    "  Names and labels match as shell globs, case-sensitively (name=order_* or name='*_payment'); "
    "`metasync render --env ENV` lists what git has.\n"
)


@pytest.mark.server
def test_a_selection_that_matches_nothing_says_so(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    root = prefixed_example(tmp_path / "project", prefix, conductor.url)
    nomatch = ("--select", "name=nomatch", "--select", "kind=TaskDef,name=nothing*")
    said = ("warning: --select name=nomatch --select kind=TaskDef,name=nothing* matches nothing "
            "in git or on the server of dev [empty-selection]\n" + NOTHING_HINT)  # fmt: skip

    planned = run_cli("--project", str(root), "plan", "--env", "dev", *nomatch)
    assert (planned.exit_code, planned.stderr) == (0, said)
    assert planned.stdout.startswith("Plan for dev: ")
    detailed = run_cli("--project", str(root), "plan", "--env", "dev", "--detailed-exitcode",
                       *nomatch)  # fmt: skip
    assert (detailed.exit_code, detailed.stderr) == (1, said)  # CI asked for what does not exist
    matching = run_cli("--project", str(root), "plan", "--env", "dev", "--detailed-exitcode",
                       "--select", f"name={prefix}*")  # fmt: skip
    assert (matching.exit_code, matching.stderr) == (2, "")

    applied = run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve", *nomatch)
    assert (applied.exit_code, applied.stderr) == (0, said)
    assert "Nothing to apply: the server matches git.\n" in applied.stdout

    drifted = run_cli("--project", str(root), "drift", "--env", "dev", *nomatch)
    assert (drifted.exit_code, drifted.stdout) == (1, "")
    assert drifted.stderr == (
        "error: --select name=nomatch --select kind=TaskDef,name=nothing* matches nothing in git "
        "or on the servers of dev\n" + NOTHING_HINT
    )

    exported = run_cli("--project", str(root), "export", "--env", "dev", "--out",
                       str(tmp_path / "out"), "--select", "name=nomatch")  # fmt: skip
    assert exported.exit_code == 0
    assert exported.stderr == (
        "warning: --select name=nomatch matches nothing on the server of dev [empty-selection]\n"
        + NOTHING_HINT
    )

    tested = run_cli("--project", str(root), "test", "--env", "dev", "--select", "name=nomatch")
    assert tested.exit_code == 1
    assert tested.stderr.startswith(
        "error: manifests/: no WorkflowTest matches the selection for dev\n"
    )


# -- 5. Ctrl-C in the middle of an apply -----------------------------------------------------------


@pytest.mark.server
def test_ctrl_c_during_apply_says_what_landed_where_the_images_are_and_what_next(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    """Every write is slowed down by 2 s: SIGINT half a second after the second step started
    comes while that step is on its way (unknown); the first landed, the rest are not applied."""
    root = prefixed_example(tmp_path / "project", prefix, conductor.url)
    writes = FaultProxy(conductor.url, shares={"delay": 1.0}, delay=(2.0, 2.0),
                        match=lambda method, path: method in ("POST", "PUT"))  # fmt: skip
    env_file = root / "environments" / "dev" / "environment.yaml"
    with writes:
        env_file.write_text(env_file.read_text().replace(conductor.url, writes.url))
        run = subprocess.Popen([METASYNC, "--project", str(root), "apply", "--env", "dev",
                                "--auto-approve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(run.stderr, lines))
        reader.start()
        # stdout read all along: the plan lists what a shared server holds besides (after a
        # session's other tests, more than a pipe buffers), and a full pipe would stop the apply
        printed: queue.Queue[str] = queue.Queue()
        printer = threading.Thread(target=_pump, args=(run.stdout, printed))
        printer.start()
        said: list[str] = []
        deadline = time.monotonic() + 180
        while sum(line.startswith("applying ") for line in said) < 2:
            try:
                said.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                run.kill()
                pytest.fail(f"no second step within 3 minutes: {''.join(said)}")
        time.sleep(0.5)
        run.send_signal(signal.SIGINT)
        run.wait(timeout=120)
        reader.join(timeout=30)
        printer.join(timeout=30)
        out = "".join(_drain(printed))
        err = "".join([*said, *_drain(lines)])
    env_file.write_text(env_file.read_text().replace(writes.url, conductor.url))
    assert run.returncode == 130, out + err
    rows = re.findall(
        r"^│ (\w+ \S+(?: v\d+)?) +│ create │ (landed|not applied|unknown) +│$", out, re.M
    )
    counts = {
        status: sum(s == status for _, s in rows) for status in ("landed", "not applied", "unknown")
    }
    assert counts == {
        "landed": 10,
        "not applied": 17 - 10 - counts["unknown"],
        "unknown": counts["unknown"],
    }
    assert counts["unknown"] >= 1  # the step on its way
    assert [name.split()[0] for name, s in rows if s == "landed"] == ["TaskDef"] * 10
    assert out.endswith(
        "10 of 17 change(s) landed; "
        f"{counts['unknown']} unknown (plan again to see whether they landed).\n"
    )
    assert "interrupted while it was being sent: it may have landed or not" in out
    listed = run_cli("--project", str(root), "history", "--env", "dev", "-o", "json")
    revision = json.loads(listed.stdout)["revisions"][-1]
    assert (revision["result"], revision["landed"], revision["changes"]) == ("interrupted", 10, 17)
    (backup,) = (root / ".metasync" / "backups" / "dev").iterdir()
    assert err.endswith(
        f"interrupted: stopped after 10 of 17 change(s) landed on dev ({counts['not applied']} "
        f"not applied, {counts['unknown']} unknown).\n"
        f"  Before-images: revision {revision['revision']} of dev on its server (`metasync "
        f"history --env dev`), and a local copy in {backup}.\n"
        "  The dev lock was released.\n"
        "  Next: `metasync plan --env dev` shows what remains (`metasync apply --env dev` applies "
        "it); `metasync rollback --env dev` undoes what landed.\n"
    )
    assert api.get(f"/metadata/workflow/{lock_name(f'{prefix}order-to-cash')}").status_code == 404
    assert (
        "interrupted (10 landed)"
        in run_cli("--project", str(root), "history", "--env", "dev").stdout
    )
