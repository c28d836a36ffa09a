"""The GitHub workflows' commands, in the order the workflows run them, against real servers.

The workflows (.github/workflows/metasync-*.yml) run `ci/metasync_ci.py` through the action
(action.yml); so does this test: a pull request's plan, the merge's apply of each changed
environment, and the scheduled drift check. dev runs on the session's server, qa and prod on two
servers of their own. The GitHub side goes through a stand-in `gh` that records its calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import conductor_server
from helpers import committed_example, git, prefixed_example

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "ci" / "metasync_ci.py"


@pytest.fixture(scope="module")
def servers(flavour: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    log_dir = tmp_path_factory.mktemp("ci-servers")
    try:
        started = conductor_server.start_many(
            {"ci-qa": None, "ci-prod": None}, log_dir=log_dir, flavour=flavour
        )
    except conductor_server.ServerError as exc:
        pytest.fail(f"cannot start the Conductor servers the test needs:\n{exc}", pytrace=False)
    yield {s.name.removeprefix("ci-"): s.url for s in started}
    for server in started:
        server.stop()


class GitHub:
    """A stand-in for the `gh` CLI: records every call, answers from a table."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "calls.jsonl"
        self.answers = folder / "answers.json"
        self.answers.write_text("{}")
        script = folder / "gh"
        script.write_text(textwrap.dedent(f"""\
            #!{sys.executable}
            import json, sys
            call = {{"args": sys.argv[1:], "stdin": sys.stdin.read() if not sys.stdin.isatty() else ""}}
            with open({str(self.log)!r}, "a") as log:
                log.write(json.dumps(call) + "\\n")
            answers = json.load(open({str(self.answers)!r}))
            print(answers.get(" ".join(sys.argv[1:3]), ""))
        """))  # fmt: skip
        script.chmod(0o755)
        self.folder = folder

    def answer(self, by_command: dict[str, Any]) -> None:
        """What to print, by the first two arguments: ``{"issue list": [...]}`` (JSON if not text)."""
        self.answers.write_text(json.dumps(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in by_command.items()}
        ))  # fmt: skip

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        self.log.unlink()
        return calls


def ci(repo: Path, github: GitHub, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PATH": f"{github.folder}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_REPOSITORY": "acme/conductor-config",
        "GITHUB_EVENT_PATH": str(github.folder / "event.json"),
        "GITHUB_OUTPUT": str(github.folder / "output"),
    }  # fmt: skip
    result = subprocess.run([sys.executable, str(CI), *args, "--out", str(repo / "out")],
                            cwd=repo, env=environment, capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == expect, result.stdout + result.stderr
    return result


def test_pull_request_merge_and_schedule_as_the_workflows_run_them(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, servers: dict[str, str]
) -> None:
    repo = committed_example(tmp_path / "repo", prefix, conductor.url)
    for env in ("qa", "prod"):
        env_file = repo / "environments" / env / "environment.yaml"
        env_file.write_text(env_file.read_text().replace(conductor.url, servers[env]))
    git(repo, "commit", "-q", "-am", "qa and prod have servers of their own")
    github = GitHub(tmp_path / "gh")
    (github.folder / "event.json").write_text(json.dumps({"pull_request": {"number": 7}}))
    only_mine = ("--select", f"name={prefix}*")

    # the first merge: every environment is applied (the apply workflow's matrix)
    for env in ("dev", "qa", "prod"):
        applied = ci(repo, github, "apply", "--env", env, *only_mine)
        assert "17 of 17 change(s) landed." in applied.stdout
        assert len(list((repo / "out" / "backups" / env).glob("*.json"))) == 1

    # a pull request: a change to the payments task definition
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "-c", "slower-retries")
    path = repo / "manifests" / "taskdefs" / "payments.yaml"
    path.write_text(
        path.read_text().replace("  retryDelaySeconds: 2\n", "  retryDelaySeconds: 5\n", 1)
    )
    git(repo, "commit", "-q", "-am", "payments: back off longer")

    github.answer({"api --paginate": ""})  # no comment yet
    ci(repo, github, "pr-plan", "--base", base, "--publish", *only_mine)
    comment = (repo / "out" / "comment.md").read_text()
    assert json.loads((repo / "out" / "environments.json").read_text()) == ["dev", "prod", "qa"]
    assert comment.startswith(
        "<!-- metasync-plan -->\n## metasync plan\n\n### metasync plan: `dev`"
    )
    assert comment.count("**0 to create, 1 to update, 0 to delete, 16 unchanged**") == 3
    assert f"<code>~ TaskDef {prefix}charge_payment</code>" in comment
    assert "! retryDelaySeconds: 2 -> 5" in comment
    assert len(comment) < 65_536
    calls = github.calls()
    assert [c["args"][:3] for c in calls] == [
        ["api", "--paginate", "repos/acme/conductor-config/issues/7/comments"],
        ["api", "--method", "POST"],
    ]
    assert json.loads(calls[1]["stdin"]) == {"body": comment}

    github.answer({"api --paginate": "4242"})  # the sticky comment exists: edited, not added
    ci(repo, github, "pr-plan", "--base", base, "--publish", *only_mine)
    assert [c["args"][:4] for c in github.calls()][1] == [
        "api",
        "--method",
        "PATCH",
        "repos/acme/conductor-config/issues/comments/4242",
    ]

    # the merge: the environments that changed, then an apply of each
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "slower-retries")
    output = github.folder / "output"
    output.unlink(missing_ok=True)
    changed = ci(repo, github, "changed", "--base", base)
    assert json.loads(changed.stdout) == ["dev", "prod", "qa"]
    assert 'environments=["dev", "prod", "qa"]' in output.read_text()
    for env in json.loads(changed.stdout):
        applied = ci(repo, github, "apply", "--env", env, *only_mine)
        assert "1 of 1 change(s) landed." in applied.stdout

    # the schedule: all in sync, nothing to open or close
    github.answer({"issue list": []})
    ci(repo, github, "drift", "--publish", *only_mine)
    document = json.loads((repo / "out" / "drift.json").read_text())
    assert [(e["environment"], e["inSync"]) for e in document["environments"]] == [
        ("dev", True), ("prod", True), ("qa", True),
    ]  # fmt: skip
    assert [c["args"][:2] for c in github.calls()] == [["issue", "list"]] * 3

    # someone edits qa by hand: an issue is opened for qa, with the drift report
    with httpx.Client(base_url=f"{servers['qa']}/api") as qa:
        taskdef = qa.get(f"/metadata/taskdefs/{prefix}charge_payment").json()
        taskdef["retryCount"] = 9
        assert qa.put("/metadata/taskdefs", json=taskdef).status_code == 200
    ci(repo, github, "drift", "--publish", *only_mine)
    report = (repo / "out" / "drift-qa.md").read_text()
    assert f"| `TaskDef {prefix}charge_payment` | live-edited:" in report
    calls = github.calls()
    created = [c for c in calls if c["args"][:2] == ["issue", "create"]]
    assert len(created) == 1
    assert created[0]["args"][2:6] == ["--title", "metasync drift: qa", "--label", "metasync-drift"]
    assert created[0]["stdin"] == report

    # while it lasts, the same issue is updated
    github.answer({"issue list": [{"number": 31, "title": "metasync drift: qa"}]})
    ci(repo, github, "drift", "--publish", *only_mine)
    assert [c["args"][:3] for c in github.calls() if c["args"][:2] != ["issue", "list"]] == [
        ["issue", "edit", "31"]
    ]

    # healed by an apply: the issue is closed
    ci(repo, github, "apply", "--env", "qa", *only_mine)
    ci(repo, github, "drift", "--publish", *only_mine)
    closed = [c["args"][:3] for c in github.calls() if c["args"][:2] == ["issue", "close"]]
    assert closed == [["issue", "close", "31"]]


def test_a_failing_plan_fails_the_job_and_says_so_in_the_comment(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    repo = committed_example(tmp_path / "repo", prefix, conductor.url)
    base = git(repo, "rev-parse", "HEAD")
    env_file = repo / "environments" / "prod" / "environment.yaml"
    env_file.write_text(env_file.read_text().replace(conductor.url, "http://127.0.0.1:9"))
    git(repo, "commit", "-q", "-am", "prod moves")
    github = GitHub(tmp_path / "gh")
    result = ci(repo, github, "pr-plan", "--base", base, expect=1)
    comment = (repo / "out" / "comment.md").read_text()
    assert "### metasync plan: `prod`\n\n**The plan failed**; the job log says why." in comment
    assert "**Planning failed for prod.**" in comment
    assert "error: GET /api/metadata/taskdefs: cannot reach the prod server" in result.stderr


def test_the_workflows_run_the_action_and_the_action_runs_the_script() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert 'python "$GITHUB_ACTION_PATH/ci/metasync_ci.py"' in action["runs"]["steps"][-1]["run"]
    commands = set()
    for name in ("metasync-pull-request", "metasync-apply", "metasync-drift"):
        workflow = yaml.safe_load((ROOT / ".github" / "workflows" / f"{name}.yml").read_text())
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                if step.get("uses") == "./":
                    commands.add(step["with"]["command"])
    assert commands == {"pr-plan", "changed", "apply", "drift"}
    apply_job = yaml.safe_load((ROOT / ".github/workflows/metasync-apply.yml").read_text())["jobs"][
        "apply"
    ]
    assert apply_job["concurrency"]["group"] == "metasync-apply-${{ matrix.environment }}"
    assert apply_job["environment"] == "${{ matrix.environment }}"


def test_the_pre_commit_hook_validates(tmp_path: Path, prefix: str) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert (hook["id"], hook["language"], hook["pass_filenames"]) == (
        "metasync-validate",
        "python",
        False,
    )
    project = prefixed_example(tmp_path / "p", prefix, "http://127.0.0.1:9")
    exe = Path(sys.executable).parent / hook["entry"].split()[0]
    run = [str(exe), *hook["entry"].split()[1:]]
    assert subprocess.run(run, cwd=project, capture_output=True, check=False).returncode == 0
    broken = project / "manifests" / "workflows" / "invoicing.yaml"
    broken.write_text(broken.read_text().replace("taskReferenceName:", "taskReferenceNam:", 1))
    result = subprocess.run(run, cwd=project, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "manifests/workflows/invoicing.yaml:" in result.stderr
