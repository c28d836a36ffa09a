"""The GitHub workflows' commands, in the order the workflows run them, against real servers.

The workflows (.github/workflows/metasync-*.yml) run `ci/metasync_ci.py` through the action
(action.yml); so does this test: a pull request's plan, the merge's apply of each changed
environment (the plan saved in the pull request), and the scheduled drift check. dev runs on the
session's server, qa and prod on two servers of their own. The GitHub side goes through a stand-in
`gh` that records its calls and serves artifacts from a folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import metasync_ci
import pytest
import yaml

import conductor_server
from helpers import committed_example, git, prefixed_example, run_cli

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
    """A stand-in for the `gh` CLI: records every call, answers from a table; `gh run download RUN
    -n NAME -D DIR` copies what ``keep`` kept as that run's artifact, and fails like gh without."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "calls.jsonl"
        self.answers = folder / "answers.json"
        self.answers.write_text("{}")
        script = folder / "gh"
        script.write_text(textwrap.dedent(f"""\
            #!{sys.executable}
            import json, shutil, sys
            from pathlib import Path
            call = {{"args": sys.argv[1:], "stdin": sys.stdin.read() if not sys.stdin.isatty() else ""}}
            with open({str(self.log)!r}, "a") as log:
                log.write(json.dumps(call) + "\\n")
            args = sys.argv[1:]
            if args[:2] == ["run", "download"]:
                kept = Path({str(folder / "artifacts")!r}, args[2], args[args.index("-n") + 1])
                if not kept.is_dir():
                    sys.exit("no valid artifacts found to download")
                shutil.copytree(kept, args[args.index("-D") + 1], dirs_exist_ok=True)
                sys.exit(0)
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

    def keep(self, run: int, name: str, files: Path) -> None:
        """What the workflow's upload-artifact step keeps: ``files`` as run ``run``'s ``name``."""
        shutil.copytree(files, self.folder / "artifacts" / str(run) / name)

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines()]
        self.log.unlink()
        return calls


REPO_API = "api repos/acme/conductor-config"


def merged_pull_request(merge: str, head: str, *, expired: bool = False) -> dict[str, Any]:
    """GitHub's answers for pull request #7, merged as ``merge`` from ``head``: its newest
    successful `metasync plan` run is 9001 (9000 an older one), which kept the plans artifact."""
    runs = f"{REPO_API}/actions/runs?head_sha={head}&status=success&event=pull_request&per_page=100"
    return {
        f"{REPO_API}/commits/{merge}/pulls": [{
            "number": 7, "merged_at": "2024-05-02T10:00:00Z", "merge_commit_sha": merge,
            "head": {"sha": head},
        }],
        runs: {"workflow_runs": [
            {"id": 9002, "name": "tests", "conclusion": "success"},
            {"id": 9001, "name": "metasync plan", "conclusion": "success"},
            {"id": 9000, "name": "metasync plan", "conclusion": "success"},
        ]},
        f"{REPO_API}/actions/runs/9001/artifacts": {
            "artifacts": [{"name": "metasync-plans", "expired": expired}]
        },
    }  # fmt: skip


def mine(api: httpx.Client, prefix: str) -> list[Any]:
    """Every task and workflow definition of this test on the server, as the server has them."""
    return [
        o
        for kind in ("taskdefs", "workflow")
        for o in api.get(f"/metadata/{kind}").json()
        if o["name"].startswith(prefix)
    ]


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
    only_mine = ("--select", f"name={prefix}*")

    # the first push has no pull request, so no reviewed plan: the job fails, writing nothing
    first = git(repo, "rev-parse", "HEAD")
    github.answer({f"{REPO_API}/commits/{first}/pulls": []})
    refused = ci(repo, github, "apply", "--env", "dev", *only_mine, expect=1)
    assert refused.stderr == (
        f"error: no reviewed plan for dev: no merged pull request brought commit {first[:7]} "
        "(pushed directly?)\n  Merge through a pull request whose `metasync plan` check planned "
        "dev, or re-run that check and then this job (its plans are kept as an artifact for a "
        "limited time). To apply what this commit holds without a reviewed plan, set the "
        "action's input `reviewed-plan: fallback`.\n"
    )
    with httpx.Client(base_url=f"{conductor.url}/api") as dev:
        assert mine(dev, prefix) == []

    # with reviewed-plan: fallback every environment is applied as committed (the matrix)
    for env in ("dev", "qa", "prod"):
        applied = ci(repo, github, "apply", "--env", env, "--reviewed-plan", "fallback", *only_mine)
        assert applied.stderr.startswith(
            f"warning: no reviewed plan for {env} (no merged pull request brought commit "
            f"{first[:7]} (pushed directly?)): applying {env} as this commit has it "
            f"(reviewed-plan: fallback)\n$ metasync apply --env {env} --auto-approve --select"
        )
        assert "17 of 17 change(s) landed." in applied.stdout
        assert len(list((repo / "out" / "backups" / env).glob("*.json"))) == 1
    assert [c["args"] for c in github.calls()] == [
        ["api", f"repos/acme/conductor-config/commits/{first}/pulls"]
    ] * 4

    # a pull request: a change to the payments task definition (dev's: qa and prod are pinned)
    base = payments_back_off_longer(repo)
    head = git(repo, "rev-parse", "HEAD")
    event = {"pull_request": {"number": 7, "head": {"sha": head}}}
    (github.folder / "event.json").write_text(json.dumps(event))

    github.answer({"api --paginate": ""})  # no comment yet
    ci(repo, github, "pr-plan", "--base", base, "--publish", *only_mine)
    comment = (repo / "out" / "comment.md").read_text()
    assert json.loads((repo / "out" / "environments.json").read_text()) == ["dev"]
    assert comment.startswith(
        f"<!-- metasync-plan -->\n## metasync plan at `{head[:7]}`\n\n### metasync plan: `dev`"
    )
    assert comment.count("**0 to create, 1 to update, 0 to delete, 16 unchanged**") == 1
    assert f"<code>~ TaskDef {prefix}charge_payment</code>" in comment
    assert "! retryDelaySeconds: 2 -> 5" in comment
    assert len(comment) < 65_536
    calls = github.calls()
    assert [c["args"][:3] for c in calls] == [
        ["api", "--paginate", "repos/acme/conductor-config/issues/7/comments"],
        ["api", "--method", "POST"],
    ]
    assert json.loads(calls[1]["stdin"]) == {"body": comment}
    # the plan is saved for the merge, with the commit and the desired state it was made from
    plans = repo / "out" / "plans"
    assert [p.name for p in plans.iterdir()] == ["dev.json"]
    saved = json.loads((plans / "dev.json").read_text())
    assert (saved["kind"], saved["environment"], saved["commit"]) == ("metasync-plan", "dev", head)
    assert saved["desiredFingerprint"].startswith("sha256:")
    assert saved["summary"]["update"] == 1

    github.answer({"api --paginate": "4242"})  # the sticky comment exists: edited, not added
    ci(repo, github, "pr-plan", "--base", base, "--publish", *only_mine)
    assert [c["args"][:4] for c in github.calls()][1] == [
        "api",
        "--method",
        "PATCH",
        "repos/acme/conductor-config/issues/comments/4242",
    ]

    # the workflow keeps the plans as the run's artifact; the merge runs on a fresh machine
    github.keep(9001, "metasync-plans", plans)
    shutil.rmtree(repo / "out")

    # the merge (a merge commit: not the commit planned): the environments that changed, then
    # each applies the plan reviewed in the pull request, downloaded from its plan run (the
    # environment's desired state is the one planned)
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge pull request #7", "slower-retries")
    merge = git(repo, "rev-parse", "HEAD")
    output = github.folder / "output"
    output.unlink(missing_ok=True)
    changed = ci(repo, github, "changed", "--base", base)
    assert json.loads(changed.stdout) == ["dev"]
    assert 'environments=["dev"]' in output.read_text()
    github.answer(merged_pull_request(merge, head))
    for env in json.loads(changed.stdout):
        applied = ci(repo, github, "apply", "--env", env, *only_mine)
        assert applied.stderr.startswith(
            f"Applying the plan reviewed in pull request #7 (run 9001, head {head[:7]}).\n"
            f"$ metasync apply {plans / env}.json\n"
        ), applied.stderr
        assert "1 of 1 change(s) landed." in applied.stdout
        assert [c["args"] for c in github.calls()] == [
            ["api", f"repos/acme/conductor-config/commits/{merge}/pulls"],
            ["api", f"repos/acme/conductor-config/actions/runs?head_sha={head}&status=success"
                    "&event=pull_request&per_page=100"],
            ["api", "repos/acme/conductor-config/actions/runs/9001/artifacts"],
            ["run", "download", "9001", "-n", "metasync-plans", "-D", str(plans),
             "--repo", "acme/conductor-config"],
        ]  # fmt: skip

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
    healed = run_cli("--project", str(repo), "apply", "--env", "qa", "--auto-approve", *only_mine)
    assert "1 of 1 change(s) landed." in healed.stdout
    ci(repo, github, "drift", "--publish", *only_mine)
    closed = [c["args"][:3] for c in github.calls() if c["args"][:2] == ["issue", "close"]]
    assert closed == [["issue", "close", "31"]]


def payments_back_off_longer(repo: Path) -> str:
    """A branch slower-retries from HEAD whose one commit changes the payments task definition
    (dev's: qa and prod are pinned); the commit it started from."""
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "-c", "slower-retries")
    path = repo / "manifests" / "taskdefs" / "payments.yaml"
    path.write_text(
        path.read_text().replace("  retryDelaySeconds: 2\n", "  retryDelaySeconds: 5\n", 1)
    )
    git(repo, "commit", "-q", "-am", "payments: back off longer")
    return base


def reviewed_pull_request(root: Path, prefix: str, url: str) -> tuple[Path, GitHub, str]:
    """The example applied to dev, then pull request #7 (payments back off longer) planned by
    the pull-request job, its plans kept as run 9001's artifact; main checked out. The repository,
    the stand-in gh and the pull request's head commit."""
    repo = committed_example(root / "repo", prefix, url)
    only_mine = ("--select", f"name={prefix}*")
    applied = run_cli("--project", str(repo), "apply", "--env", "dev", "--auto-approve", *only_mine)
    assert "17 of 17 change(s) landed." in applied.stdout
    base = payments_back_off_longer(repo)
    github = GitHub(root / "gh")
    # the plans are what these tests are about: the pull request's workflow tests have a test of
    # their own (below), and on 3.15 they leave the server's test loops spinning after them
    ci(repo, github, "pr-plan", "--base", base, "--tests", "none", *only_mine)
    github.keep(9001, "metasync-plans", repo / "out" / "plans")
    shutil.rmtree(repo / "out")
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "main")
    return repo, github, head


def main_moves_and_merges(repo: Path) -> str:
    """Another change to dev's desired state lands on main first, then #7 is merged; the merge."""
    path = repo / "manifests" / "taskdefs" / "orders.yaml"
    path.write_text(path.read_text().replace("  retryCount: 5\n", "  retryCount: 6\n", 1))
    git(repo, "commit", "-q", "-am", "release_inventory: one more retry")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge pull request #7", "slower-retries")
    return git(repo, "rev-parse", "HEAD")


def test_a_merge_whose_environment_differs_from_the_reviewed_one_is_refused(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    repo, github, head = reviewed_pull_request(tmp_path, prefix, conductor.url)
    merge = main_moves_and_merges(repo)
    github.answer(merged_pull_request(merge, head))
    before = mine(api, prefix)
    refused = ci(repo, github, "apply", "--env", "dev", expect=1)
    plan = repo / "out" / "plans" / "dev.json"
    assert refused.stderr.endswith(
        f"$ metasync apply {plan}\n"
        f"error: {plan}: the plan for dev was made at commit {head[:7]}, but this checkout (HEAD "
        f"{merge[:7]}) has another desired state for dev: what was reviewed is not what would "
        "land, so nothing was applied\n"
        f"  Plan again on this commit and review that plan (metasync plan --env dev --out {plan}).\n"
    ), refused.stderr
    assert refused.stdout == ""
    assert mine(api, prefix) == before  # not one object written (nor its update time)
    assert not (repo / "out" / "backups").exists()


def test_a_merge_applies_a_reviewed_plan_saved_without_the_desired_fingerprint(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    repo, github, head = reviewed_pull_request(tmp_path, prefix, conductor.url)
    kept = github.folder / "artifacts" / "9001" / "metasync-plans" / "dev.json"
    document = json.loads(kept.read_text())
    assert document["desiredFingerprint"].startswith("sha256:")
    del document["desiredFingerprint"]  # as an older metasync saved it
    kept.write_text(json.dumps(document))
    merge = main_moves_and_merges(repo)
    github.answer(merged_pull_request(merge, head))
    applied = ci(repo, github, "apply", "--env", "dev")
    # without it the environment as a whole is not compared, each reviewed object still is: the
    # reviewed change lands, main's own (never reviewed) does not
    assert "1 of 1 change(s) landed." in applied.stdout
    taskdefs = {t["name"]: t for t in api.get("/metadata/taskdefs").json()}
    assert taskdefs[f"{prefix}charge_payment"]["retryDelaySeconds"] == 5
    assert taskdefs[f"{prefix}release_inventory"]["retryCount"] == 5


def test_a_merge_without_a_reviewed_plan_fails_unless_the_fallback_is_chosen(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    repo = committed_example(tmp_path / "repo", prefix, conductor.url)
    sha, head = git(repo, "rev-parse", "HEAD"), "f" * 40
    github = GitHub(tmp_path / "gh")
    only_qa = tmp_path / "plans"
    only_qa.mkdir()
    (only_qa / "qa.json").write_text("{}")
    github.keep(9001, "metasync-plans", only_qa)
    reviewed = merged_pull_request(sha, head)
    runs = next(key for key in reviewed if "/actions/runs?" in key)
    open_pull = [{"number": 7, "merged_at": None, "merge_commit_sha": None, "head": {"sha": head}}]
    cases: list[tuple[dict[str, Any], str]] = [
        ({f"{REPO_API}/commits/{sha}/pulls": []},
         f"no merged pull request brought commit {sha[:7]} (pushed directly?)"),
        ({f"{REPO_API}/commits/{sha}/pulls": open_pull},
         f"no merged pull request brought commit {sha[:7]} (pushed directly?)"),
        ({**reviewed, runs: {"workflow_runs": [{"id": 9002, "name": "tests", "conclusion": "success"}]}},
         "pull request #7 has no successful `metasync plan` run for its head commit fffffff"),
        ({**reviewed, f"{REPO_API}/actions/runs/9001/artifacts": {"artifacts": []}},
         "run 9001 of pull request #7 kept no metasync-plans artifact"),
        (merged_pull_request(sha, head, expired=True),
         "the metasync-plans artifact of pull request #7 (run 9001) has expired"),
        (reviewed, "pull request #7 did not plan dev (run 9001)"),
    ]  # fmt: skip
    for answers, reason in cases:
        github.answer(answers)
        failed = ci(repo, github, "apply", "--env", "dev", expect=1)
        assert failed.stderr.startswith(f"error: no reviewed plan for dev: {reason}\n"), reason
        assert "$ metasync" not in failed.stderr
    assert mine(api, prefix) == []

    github.answer(merged_pull_request(sha, head, expired=True))
    applied = ci(repo, github, "apply", "--env", "dev", "--reviewed-plan", "fallback",
                 "--select", f"name={prefix}*")  # fmt: skip
    assert applied.stderr.startswith(
        "warning: no reviewed plan for dev (the metasync-plans artifact of pull request #7 (run "
        "9001) has expired): applying dev as this commit has it (reviewed-plan: fallback)\n"
    )
    assert "17 of 17 change(s) landed." in applied.stdout


def test_a_failing_plan_fails_the_job_and_says_so_in_the_comment(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    repo = committed_example(tmp_path / "repo", prefix, conductor.url)
    base = git(repo, "rev-parse", "HEAD")
    env_file = repo / "environments" / "prod" / "environment.yaml"
    env_file.write_text(env_file.read_text().replace(conductor.url, "http://127.0.0.1:9"))
    git(repo, "commit", "-q", "-am", "prod moves")
    commit = git(repo, "rev-parse", "HEAD")
    github = GitHub(tmp_path / "gh")
    # GitHub plans a pull request's merge into its base, not the pull request's head
    event = {"pull_request": {"number": 8, "head": {"sha": "0123456789abcdef" * 2 + "01234567"}}}
    (github.folder / "event.json").write_text(json.dumps(event))
    result = ci(repo, github, "pr-plan", "--base", base, expect=1)
    comment = (repo / "out" / "comment.md").read_text()
    assert comment.startswith(
        f"<!-- metasync-plan -->\n## metasync plan at `{commit[:7]}`\n\n"
        "(the merge of this pull request's `0123456` into its base)\n\n"
        "### metasync plan: `prod`\n\n**The plan failed:**\n\n```text\n"
        "error: GET /api/metadata/taskdefs: cannot reach the prod server"
    )
    assert "the job log says why" not in comment
    assert "**Planning failed for prod.**" in comment
    assert "error: GET /api/metadata/taskdefs: cannot reach the prod server" in result.stderr
    assert list((repo / "out" / "plans").iterdir()) == []  # a plan that failed is not saved


def test_a_pull_request_that_breaks_a_tested_workflow_fails_with_the_test_first(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    repo = committed_example(tmp_path / "repo", prefix, conductor.url)
    base = git(repo, "rev-parse", "HEAD")
    path = repo / "manifests" / "workflows" / "order_to_cash.yaml"
    text = path.read_text()
    assert text.count("evaluatorType: value-param") == 1
    path.write_text(text.replace("evaluatorType: value-param", "evaluatorType: value_param"))
    git(repo, "commit", "-q", "-am", "route payments (a typo every run fails on)")
    github = GitHub(tmp_path / "gh")
    event = {"pull_request": {"number": 9, "head": {"sha": git(repo, "rev-parse", "HEAD")}}}
    (github.folder / "event.json").write_text(json.dumps(event))
    result = ci(repo, github, "pr-plan", "--base", base, expect=1)
    comment = (repo / "out" / "comment.md").read_text()
    tests = comment.index("#### Workflow tests: `dev`: ")
    assert tests < comment.index("### metasync plan: `dev`")  # the failure comes first
    assert re.search(r"#### Workflow tests: `dev`: \d+ passed, [1-9]\d* failed", comment)
    assert f"FAIL {prefix}card_order_is_paid_fulfilled_and_summarized ({prefix}order_to_cash)" in (
        comment
    )
    assert (
        "the workflow ended FAILED, expected COMPLETED: route_payment (SWITCH): No evaluator "
        "registered for type: value_param" in comment
    )
    assert "**Workflow tests failed for dev: do not merge.**" in comment
    junit = (repo / "out" / "tests" / "dev.xml").read_text()
    assert "<failure " in junit
    assert "metasync test" in result.stderr
    # the job log says why too, not only the comment
    assert "**Workflow tests failed for dev: do not merge.**" in result.stderr
    assert f"FAIL {prefix}card_order_is_paid_fulfilled_and_summarized" in result.stderr


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

    # the pull request keeps its plans where the merge looks for them, and may read them there
    pull_request = yaml.safe_load(
        (ROOT / ".github/workflows/metasync-pull-request.yml").read_text()
    )
    assert pull_request["name"] == metasync_ci.PLAN_WORKFLOW
    uploads = {
        step["with"]["name"]: step
        for step in pull_request["jobs"]["plan"]["steps"]
        if step.get("uses") == "actions/upload-artifact@v4"
    }
    assert uploads[metasync_ci.PLANS_ARTIFACT]["with"]["path"] == "metasync-out/plans"
    assert "if" not in uploads[metasync_ci.PLANS_ARTIFACT]  # a failing test keeps no plan
    # the workflow tests' JUnit XML is kept whatever happened
    assert uploads["metasync-tests"]["with"]["path"] == "metasync-out/tests"
    assert uploads["metasync-tests"]["if"] == "always()"
    assert action["inputs"]["tests"]["default"] == "changed"
    assert '--tests "$INPUT_TESTS"' in action["runs"]["steps"][-1]["run"]
    merge = yaml.safe_load((ROOT / ".github/workflows/metasync-apply.yml").read_text())
    assert merge["permissions"] == {"contents": "read", "actions": "read"}
    assert action["inputs"]["reviewed-plan"]["default"] == "required"
    assert '--reviewed-plan "$INPUT_REVIEWED_PLAN"' in action["runs"]["steps"][-1]["run"]


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
