#!/usr/bin/env python3
"""What the metasync GitHub Action runs (action.yml): the same `metasync` commands a person would
type, and, with --publish, the GitHub side through the `gh` CLI. Stdlib only.

    metasync_ci.py changed  --base REF                 environments whose desired state changed
    metasync_ci.py pr-plan  --base REF [--publish]     plan each (saved in OUT/plans/ENV.json),
                                                       one sticky PR comment
    metasync_ci.py apply    --env ENV                  apply the plan reviewed in the pull request
                            [--reviewed-plan fallback]  merged here (or, failing one, main as is)
    metasync_ci.py drift    [--publish]                drift --all; one issue per drifted env

Common options: --project DIR, --out DIR (files for later steps and artifacts), --select SEL
(repeatable), --notify URL (repeatable). Exit codes: 0 done (drift found is reported through
issues and --out, not the exit code), 1 a metasync command failed (its error is on stderr), or apply
found no reviewed plan. Under GitHub Actions, results also go to $GITHUB_OUTPUT and
$GITHUB_STEP_SUMMARY; apply finds the reviewed plan through `gh` (GITHUB_REPOSITORY, GH_TOKEN).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: GitHub refuses comments and issue bodies over 65,536 characters
COMMENT_LIMIT = 60_000
COMMENT_MARKER = "<!-- metasync-plan -->"
DRIFT_LABEL = "metasync-drift"
DRIFT_TITLE = "metasync drift: {env}"
#: the pull-request workflow's name and the artifact it keeps the saved plans in
PLAN_WORKFLOW = "metasync plan"
PLANS_ARTIFACT = "metasync-plans"
#: how much of a failed plan's error the comment quotes
ERROR_LIMIT = 4_000


class Failed(Exception):
    """A command failed; its output is already on stderr (and in ``stderr``)."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


class NoReviewedPlan(Exception):
    """The merged commit has no plan reviewed for the environment: why."""


def metasync(options: argparse.Namespace, *args: str, ok: Sequence[int] = (0,)) -> str:
    """Run ``metasync --project DIR ARGS``; stdout, or Failed when the exit code is not ``ok``."""
    exe = shutil.which("metasync") or str(Path(sys.executable).parent / "metasync")
    command = [exe, "--project", options.project, *args]
    print(f"$ metasync {' '.join(args)}", file=sys.stderr, flush=True)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stderr.write(result.stderr)
    if result.returncode not in ok:
        raise Failed(f"metasync {args[0]} exited {result.returncode}", result.stderr)
    options.last_code = result.returncode
    return result.stdout


def gh(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(["gh", *args], input=stdin, capture_output=True, text=True,
                            check=False)  # fmt: skip
    if result.returncode != 0:
        raise Failed(f"gh {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


def head_commit(options: argparse.Namespace) -> str:
    result = subprocess.run(["git", "-C", options.project, "rev-parse", "HEAD"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        raise Failed(f"cannot read the checked-out commit: {result.stderr.strip()}")
    return result.stdout.strip()


def selection(options: argparse.Namespace) -> list[str]:
    return [arg for sel in options.select for arg in ("--select", sel)]


def notify(options: argparse.Namespace) -> list[str]:
    return [arg for url in options.notify for arg in ("--notify", url)]


def github_output(**values: str) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as stream:
            for key, value in values.items():
                stream.write(f"{key}={value}\n")


def step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(text + "\n")


# -- commands -------------------------------------------------------------------------------------


def changed_environments(options: argparse.Namespace) -> list[str]:
    # a push that creates a branch has no "before" (all zeros): compare with the parent commit
    base = "HEAD~1" if set(options.base) == {"0"} else options.base
    envs: list[str] = json.loads(metasync(options, "changed", "--base", base, "-o", "json"))
    return envs


def changed(options: argparse.Namespace) -> int:
    envs = changed_environments(options)
    print(json.dumps(envs))
    github_output(environments=json.dumps(envs), any=str(bool(envs)).lower())
    return 0


def pr_plan(options: argparse.Namespace) -> int:
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    plans = out / "plans"  # the workflow keeps them for the merge: `apply` applies them
    shutil.rmtree(plans, ignore_errors=True)
    plans.mkdir()
    envs = changed_environments(options)
    commit = head_commit(options)
    header = f"{COMMENT_MARKER}\n## metasync plan at `{commit[:7]}`\n\n{merged_note(commit)}"
    failed: list[str] = []
    untested: list[str] = []
    if not envs:
        body = header + "No environment's desired state changes in this pull request.\n"
    else:
        share = (COMMENT_LIMIT - len(header) - 200) // len(envs)
        sections = []
        for env in envs:
            tests, passed = workflow_tests(options, env, out, share // 3)
            if not passed:
                untested.append(env)
            try:
                plan = metasync(
                    options, "plan", "--env", env, "-o", "markdown", "--detailed-exitcode",
                    "--markdown-limit", str(share - len(tests)),
                    "--out", str(plans / f"{env}.json"), *selection(options), ok=(0, 2),
                )  # fmt: skip
            except Failed as exc:
                failed.append(env)
                plan = f"### metasync plan: `{env}`\n\n**The plan failed:**\n\n" + fenced(
                    exc.stderr, min(ERROR_LIMIT, share // 2)
                )
            # a failing test comes first: it blocks the change whatever the plan says
            sections.append(tests + plan if not passed else plan + tests)
        body = header + "\n".join(sections)
        if failed:
            body += f"\n**Planning failed for {', '.join(failed)}.**\n"
        if untested:
            body += f"\n**Workflow tests failed for {', '.join(untested)}: do not merge.**\n"
    (out / "comment.md").write_text(body)
    (out / "environments.json").write_text(json.dumps(envs) + "\n")
    github_output(environments=json.dumps(envs))
    step_summary(body)
    if options.publish:
        publish_comment(body)
    if failed or untested:  # the job log says why too, not only the comment
        print(body, file=sys.stderr)
        return 1
    return 0


def workflow_tests(options: argparse.Namespace, env: str, out: Path,
                   limit: int) -> tuple[str, bool]:  # fmt: skip
    """``env``'s tests of what the pull request changes (`metasync test --changed-since BASE`):
    a Markdown section for the comment, and whether they passed. JUnit XML goes to
    ``<out>/tests/ENV.xml`` for the workflow to publish."""
    if options.tests == "none":
        return "", True
    (out / "tests").mkdir(exist_ok=True)
    server = ("--server", options.test_server) if options.test_server else ()
    try:
        text = metasync(
            options, "test", "--env", env, "--changed-since", options.base, "-o", "json",
            "--junit", str(out / "tests" / f"{env}.xml"), *server, ok=(0, 1),
        )  # fmt: skip
        document = json.loads(text)
    except (Failed, ValueError) as exc:
        error = exc.stderr if isinstance(exc, Failed) else str(exc)
        return (f"#### Workflow tests: `{env}`\n\n**The tests could not run:**\n\n"
                + fenced(error, min(ERROR_LIMIT, limit)), False)  # fmt: skip
    tests = document["tests"]
    if not tests:
        return f"#### Workflow tests: `{env}`\n\nNo test covers what changes.\n", True
    summary = document["summary"]
    failing = [t for t in tests if t["outcome"] != "passed"]
    lines = [f"#### Workflow tests: `{env}`: {summary['passed']} passed, "
             f"{summary['failed'] + summary['error']} failed\n"]  # fmt: skip
    details = []
    for test in failing:
        where = f"{test['file']}:{test['line']}" if test.get("file") else ""
        details.append(f"FAIL {test['name']} ({test['workflow']}) {where}".rstrip())
        details += [f"  - {failure}" for failure in test["failures"]]
        if test["path"]:
            details.append(f"  ran: {' > '.join(test['path'])}")
    if details:
        lines.append(fenced("\n".join(details), limit))
    return "\n".join(lines) + "\n", not failing


def fenced(text: str, limit: int) -> str:
    """``text`` as a Markdown code block, cut to ``limit`` characters."""
    text = text.strip() or "(metasync said nothing)"
    if len(text) > limit:
        text = text[:limit].rstrip() + "\n... (cut: the job log has all of it)"
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}\n"


def merged_note(commit: str) -> str:
    """On a pull request GitHub checks out its merge into the base: which head that merges."""
    try:
        event = json.loads(Path(os.environ["GITHUB_EVENT_PATH"]).read_text())
        head = str(event["pull_request"]["head"]["sha"])
    except (KeyError, OSError, TypeError, ValueError):
        return ""
    if head == commit:
        return ""
    return f"(the merge of this pull request's `{head[:7]}` into its base)\n\n"


def publish_comment(body: str) -> None:
    """One sticky comment per pull request: edited when it exists, created otherwise."""
    repo, number = os.environ["GITHUB_REPOSITORY"], pr_number()
    mine = gh("api", "--paginate", f"repos/{repo}/issues/{number}/comments", "--jq",
              f'.[] | select(.body | contains("{COMMENT_MARKER}")) | .id').split()  # fmt: skip
    payload = json.dumps({"body": body})
    if mine:
        gh("api", "--method", "PATCH", f"repos/{repo}/issues/comments/{mine[0]}",
           "--input", "-", stdin=payload)  # fmt: skip
    else:
        gh("api", "--method", "POST", f"repos/{repo}/issues/{number}/comments",
           "--input", "-", stdin=payload)  # fmt: skip


def pr_number() -> str:
    event = json.loads(Path(os.environ["GITHUB_EVENT_PATH"]).read_text())
    return str(event["pull_request"]["number"])


def apply(options: argparse.Namespace) -> int:
    """Apply the plan reviewed in the pull request merged here; without one, fail (or, with
    --reviewed-plan fallback, apply the environment as this commit has it)."""
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    env = options.env
    try:
        plan, source = reviewed_plan(options, out / "plans")
    except NoReviewedPlan as exc:
        if options.reviewed_plan == "required":
            print(f"error: no reviewed plan for {env}: {exc}\n  Merge through a pull request whose "
                  f"`{PLAN_WORKFLOW}` check planned {env}, or re-run that check and then this job "
                  "(its plans are kept as an artifact for a limited time). To apply what this "
                  "commit holds without a reviewed plan, set the action's input "
                  "`reviewed-plan: fallback`.", file=sys.stderr)  # fmt: skip
            step_summary(
                f"## metasync apply: `{env}`\n\nNothing applied: no reviewed plan ({exc})."
            )
            return 1
        print(f"warning: no reviewed plan for {env} ({exc}): applying {env} as this commit has "
              "it (reviewed-plan: fallback)", file=sys.stderr)  # fmt: skip
        origin = f"No reviewed plan ({exc}): {env} applied as this commit has it (fallback)."
        args = ["--env", env, "--auto-approve", *selection(options)]
    else:
        origin = f"Applying the plan reviewed in {source}."
        print(origin, file=sys.stderr)
        args = [str(plan)]  # the plan carries its selection: apply PLAN takes no --select
    result = metasync(options, "apply", *args, *notify(options), ok=(0, 1))
    print(result, end="")
    saved = re.search(r"^Before-images saved in (.+?) \(", result, re.M)
    if saved:  # for the workflow to keep as an artifact: `metasync rollback` restores them
        (out / "backups" / env).mkdir(parents=True, exist_ok=True)
        shutil.copy(saved[1], out / "backups" / env)
    step_summary(f"## metasync apply: `{env}`\n\n{origin}\n\n```\n{result}```")
    return 1 if options.last_code else 0  # what did not land is in the table above


def reviewed_plan(options: argparse.Namespace, folder: Path) -> tuple[Path, str]:
    """The saved plan of ``options.env`` that the pull request merged into HEAD was reviewed with
    (downloaded into ``folder``), and where it comes from; NoReviewedPlan says why there is none."""
    repo = os.environ.get("GITHUB_REPOSITORY")
    if not repo:
        raise NoReviewedPlan("GITHUB_REPOSITORY is not set, so there is no pull request to ask for")
    sha = head_commit(options)
    pulls = [p for p in json.loads(gh("api", f"repos/{repo}/commits/{sha}/pulls"))
             if p.get("merged_at")]  # fmt: skip
    pull = next((p for p in pulls if p.get("merge_commit_sha") == sha), pulls[0] if pulls else None)
    if pull is None:
        raise NoReviewedPlan(f"no merged pull request brought commit {sha[:7]} (pushed directly?)")
    number, head = pull["number"], pull["head"]["sha"]
    runs = json.loads(gh("api", f"repos/{repo}/actions/runs?head_sha={head}&status=success"
                                "&event=pull_request&per_page=100"))["workflow_runs"]  # fmt: skip
    runs = [r for r in runs if r.get("name") == PLAN_WORKFLOW and r.get("conclusion") == "success"]
    if not runs:
        raise NoReviewedPlan(f"pull request #{number} has no successful `{PLAN_WORKFLOW}` run for "
                             f"its head commit {head[:7]}")  # fmt: skip
    run = max(runs, key=lambda r: int(r["id"]))["id"]
    artifacts = json.loads(gh("api", f"repos/{repo}/actions/runs/{run}/artifacts"))["artifacts"]
    kept = [a for a in artifacts if a.get("name") == PLANS_ARTIFACT]
    if not kept:
        raise NoReviewedPlan(
            f"run {run} of pull request #{number} kept no {PLANS_ARTIFACT} artifact"
        )
    if all(a.get("expired") for a in kept):
        raise NoReviewedPlan(f"the {PLANS_ARTIFACT} artifact of pull request #{number} (run {run}) "
                             "has expired")  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    gh("run", "download", str(run), "-n", PLANS_ARTIFACT, "-D", str(folder), "--repo", repo)
    saved = folder / f"{options.env}.json"
    if not saved.is_file():
        raise NoReviewedPlan(f"pull request #{number} did not plan {options.env} (run {run})")
    return saved, f"pull request #{number} (run {run}, head {head[:7]})"


def drift(options: argparse.Namespace) -> int:
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    document = json.loads(metasync(options, "drift", "--all", "-o", "json", *selection(options),
                                   *notify(options), ok=(0, 1, 2)))  # fmt: skip
    code = options.last_code
    (out / "drift.json").write_text(json.dumps(document, indent=2) + "\n")
    drifted = []
    for report in document["environments"]:
        env = report["environment"]
        if report["error"]:
            continue  # not checked: neither open nor close its issue
        if report["drift"]:
            drifted.append(env)
            body = metasync(options, "drift", "--env", env, "-o", "markdown", *selection(options),
                            ok=(2,))  # fmt: skip
            (out / f"drift-{env}.md").write_text(body)
            if options.publish:
                open_or_update_issue(env, body)
        elif options.publish:
            close_issue(env)
    github_output(drifted=json.dumps(drifted))
    step_summary(f"## metasync drift\n\nDrifted: {', '.join(drifted) or 'none'}")
    return 1 if code == 1 else 0


def _issue(env: str) -> dict[str, Any] | None:
    found = json.loads(gh("issue", "list", "--state", "open", "--label", DRIFT_LABEL,
                          "--json", "number,title", "--limit", "200"))  # fmt: skip
    title = DRIFT_TITLE.format(env=env)
    return next((i for i in found if i["title"] == title), None)


def open_or_update_issue(env: str, body: str) -> None:
    issue = _issue(env)
    if issue is None:
        gh("label", "create", DRIFT_LABEL, "--force", "--color", "d93f0b",
           "--description", "metasync found a server that differs from git")  # fmt: skip
        gh("issue", "create", "--title", DRIFT_TITLE.format(env=env), "--label", DRIFT_LABEL,
           "--body-file", "-", stdin=body)  # fmt: skip
    else:
        gh("issue", "edit", str(issue["number"]), "--body-file", "-", stdin=body)


def close_issue(env: str) -> None:
    issue = _issue(env)
    if issue is not None:
        gh("issue", "close", str(issue["number"]), "--comment",
           f"{env} matches git again (metasync drift).")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["changed", "pr-plan", "apply", "drift"])
    parser.add_argument("--project", default=".")
    parser.add_argument("--out", default="metasync-out")
    parser.add_argument("--base", help="changed, pr-plan: the commit to compare with")
    parser.add_argument("--env", help="apply: the environment")
    parser.add_argument("--reviewed-plan", choices=["required", "fallback"], default="required",
                        help="apply: without a plan reviewed in the merged pull request, fail "
                        "(required) or apply the environment as committed (fallback)")  # fmt: skip
    parser.add_argument("--tests", choices=["changed", "none"], default="changed",
                        help="pr-plan: run the workflow tests of what changed (metasync test "
                        "--changed-since BASE), or none")  # fmt: skip
    parser.add_argument("--test-server", default="",
                        help="pr-plan: run the tests on this (throwaway) server instead of each "
                        "environment's")  # fmt: skip
    parser.add_argument("--select", action="append", default=[])
    parser.add_argument("--notify", action="append", default=[])
    parser.add_argument("--publish", action="store_true",
                        help="comment on the pull request / open and close issues (needs gh)")  # fmt: skip
    options = parser.parse_args(argv)
    options.last_code = 0
    if options.command in ("changed", "pr-plan") and not options.base:
        parser.error(f"{options.command} needs --base REF")
    if options.command == "apply" and not options.env:
        parser.error("apply needs --env ENV")
    handler = {"changed": changed, "pr-plan": pr_plan, "apply": apply, "drift": drift}
    try:
        return handler[options.command](options)
    except Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
