"""Pinned commits and `promote`, in a real git repository, planned against a real server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import git
import httpx
import pytest

import conductor_server
from helpers import prefixed_example, run_cli
from metasync import operations as op
from metasync.project import Project


def commit_all(repo: git.Repo, message: str) -> str:
    repo.git.add(A=True)
    repo.index.commit(message)
    return repo.head.commit.hexsha


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def new_repo(root: Path) -> git.Repo:
    """A repository whose commits have an author, whatever the machine's git config."""
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "Test")
        config.set_value("user", "email", "test@example.com")
    return repo


def set_pin(root: Path, commit: str, env: str = "qa") -> None:
    """``env`` (qa: from dev; prod: from qa) pinned to ``commit``."""
    path = root / "environments" / env / "environment.yaml"
    stage = {"qa": "dev", "prod": "qa"}[env]
    text = re.sub(r"(?m)^  from: .*$", f"  from: {stage}", path.read_text())
    path.write_text(re.sub(r"(?m)^  ref: .*$", f"  ref: {commit}", text))


@pytest.fixture
def history(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> tuple[Path, list[str]]:
    """Three commits: the example; qa and prod pinned to the first plus change A; change B."""
    root = prefixed_example(tmp_path / "repo", prefix, conductor.url)
    repo = new_repo(root)
    first = commit_all(repo, "the example project")
    set_pin(root, first)
    set_pin(root, first, "prod")
    edit(
        root / "manifests" / "taskdefs" / "fulfillment.yaml",
        "  retryCount: 3\n",
        "  retryCount: 4\n",
    )
    second = commit_all(repo, "qa runs the first commit; pick_item retries 4 times")
    edit(
        root / "manifests" / "workflows" / "invoicing.yaml",
        "  description: Issue an invoice and book it once paid.\n",
        "  description: Issue an invoice, book it once paid.\n",
    )
    third = commit_all(repo, "reword invoicing")
    return root, [first, second, third]


def specs(root: Path, env: str) -> dict[str, dict[str, object]]:
    result = run_cli("--project", str(root), "render", "--env", env, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return {r["name"]: r["spec"] for r in json.loads(result.stdout)["resources"]}


@pytest.mark.server
def test_pins_render_old_commits_and_promote_moves_them(
    history: tuple[Path, list[str]], prefix: str, tmp_path: Path
) -> None:
    root, (_, _, third) = history
    dev, qa = specs(root, "dev"), specs(root, "qa")
    assert dev[f"{prefix}pick_item"]["retryCount"] == 4  # the working tree
    assert qa[f"{prefix}pick_item"]["retryCount"] == 3  # the first commit
    assert qa[f"{prefix}invoicing"]["description"] == "Issue an invoice and book it once paid."
    assert qa[f"{prefix}order_to_cash"]["timeoutSeconds"] == 86400  # qa's overlay still applies

    result = run_cli("--project", str(root), "apply", "--env", "qa", "--auto-approve")
    assert result.exit_code == 0, result.stdout + result.stderr

    repo = git.Repo(root)
    head_before = repo.head.commit.hexsha
    # dev and qa share the test's server: what it holds is qa's, so dev is not verified here
    result = run_cli("--project", str(root), "promote", "dev", "qa", "--unverified")
    assert result.exit_code == 0, result.stderr
    branch = f"promote/qa-{third[:7]}"
    assert result.stdout.startswith(f"qa now runs {third[:7]} (what dev runs) on branch {branch}\n")

    # the user's checkout did not move
    assert repo.active_branch.name == "main"
    assert repo.head.commit.hexsha == head_before
    assert not repo.is_dirty(untracked_files=True)

    promoted = repo.commit(branch)
    message = str(promoted.message)
    assert promoted.parents[0].hexsha == head_before
    assert message.startswith(f"Promote dev to qa: qa runs {third[:7]}\n")
    env_text = (promoted.tree / "environments/qa/environment.yaml").data_stream.read().decode()
    assert f"  ref: {third}\n" in env_text
    assert "# The qa environment" in env_text  # comments kept

    # on that branch, the plan for qa shows exactly the promoted changes
    worktree = tmp_path / "review"
    repo.git.worktree("add", str(worktree), branch)
    plan = op.plan.plan(Project(worktree), "qa").plan
    assert sorted((c.name, [(f.path, f.before, f.after) for f in c.fields]) for c in plan.pending) == [
        (f"{prefix}invoicing", [("description", "Issue an invoice and book it once paid.",
                                 "Issue an invoice, book it once paid.")]),
        (f"{prefix}pick_item", [("retryCount", 3, 4)]),
    ]  # fmt: skip
    assert "Plan for qa (" in message
    assert f"~ WorkflowDef {prefix}invoicing v1: description" in message
    assert f"~ TaskDef {prefix}pick_item: retryCount" in message


def test_a_pin_that_does_not_exist(tmp_path: Path, prefix: str) -> None:
    root = prefixed_example(tmp_path / "repo", prefix, "http://127.0.0.1:9")
    repo = new_repo(root)
    commit_all(repo, "init")
    set_pin(root, "0123456789abcdef0123456789abcdef01234567")
    result = run_cli("--project", str(root), "render", "--env", "qa")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: environments/qa/environment.yaml promotion.ref: promotion.ref "
        "'0123456789abcdef0123456789abcdef01234567' is not a commit in this repository\n"
        "  Use a commit hash (or a tag or branch) that exists; `git log` lists them.\n"
    )


def test_promote_refuses_uncommitted_manifests_and_uses_the_manifest_diff_offline(
    tmp_path: Path, prefix: str
) -> None:
    root = prefixed_example(tmp_path / "repo", prefix, "http://127.0.0.1:9")  # no server there
    repo = new_repo(root)
    first = commit_all(repo, "init")
    set_pin(root, first)
    commit_all(repo, "pin qa")
    edit(root / "manifests" / "taskdefs" / "billing.yaml", "  retryCount: 2\n", "  retryCount: 3\n")

    result = run_cli("--project", str(root), "promote", "dev", "qa")
    assert result.exit_code == 1
    assert "dev follows the working tree and manifests/ has uncommitted changes" in result.stderr

    commit_all(repo, "generate_invoice retries 3 times")
    remote = git.Repo.init(tmp_path / "remote.git", bare=True)
    repo.create_remote("origin", str(tmp_path / "remote.git"))
    result = run_cli("--project", str(root), "promote", "dev", "qa")
    assert result.exit_code == 1  # no server says dev runs it
    assert "error: cannot tell whether dev runs " in result.stderr
    assert "pass --unverified to promote all the same" in result.stderr
    result = run_cli("--project", str(root), "promote", "dev", "qa", "--branch", "release-qa",
                     "--push", "--unverified")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert remote.commit("release-qa").hexsha == repo.commit("release-qa").hexsha
    message = str(repo.commit("release-qa").message)
    assert "qa's server could not be read" in message
    assert f"  ~ TaskDef {prefix}generate_invoice" in message
    assert message.count("  ~ ") == 1


def test_promote_goes_stage_by_stage_unless_told_to_skip(tmp_path: Path, prefix: str) -> None:
    """dev -> qa -> prod: dev to prod skips qa and is refused, naming qa; --skip-stage does it,
    says so, and the promotion commit records it. A target from no stage of its source too."""
    root = prefixed_example(tmp_path / "repo", prefix, "http://127.0.0.1:9")  # no server there
    repo = new_repo(root)
    first = commit_all(repo, "init")
    set_pin(root, first)
    set_pin(root, first, "prod")
    head = commit_all(repo, "qa and prod run the first commit")

    result = run_cli("--project", str(root), "promote", "dev", "prod")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: environments/prod/environment.yaml promotion.from: prod is promoted from qa, not "
        "dev: promoting dev to prod skips qa\n  Promote in order (dev -> qa -> prod), or pass "
        "--skip-stage to skip on purpose (the promotion commit records it).\n"
    )
    assert [b.name for b in repo.branches] == ["main"]  # nothing written
    result = run_cli("--project", str(root), "promote", "qa", "dev")
    assert result.exit_code == 1
    assert "dev is not promoted from qa (its promotion.from is not set)" in result.stderr

    result = run_cli("--project", str(root), "promote", "dev", "prod", "--skip-stage",
                     "--unverified")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "--skip-stage: skipping qa" in result.stderr
    assert result.stdout.startswith(f"prod now runs {head[:7]} (what dev runs) on branch ")
    message = str(repo.commit(f"promote/prod-{head[:7]}").message)
    assert message.rstrip().endswith(
        f"Skip-stage: qa\nUnverified: whether dev runs {head[:7]} was not checked"
    )


@pytest.mark.server
def test_promote_only_what_the_source_runs(
    tmp_path: Path,
    prefix: str,
    conductor: conductor_server.Server,
    conductor_b: conductor_server.Server,
) -> None:
    """dev -> qa: refused until dev's server runs the commit (applied, and landed), and again
    once dev's server moved away from it."""
    root = prefixed_example(tmp_path / "repo", prefix, conductor.url)
    qa_env = root / "environments" / "qa" / "environment.yaml"
    qa_env.write_text(qa_env.read_text().replace(conductor.url, conductor_b.url))
    repo = new_repo(root)
    first = commit_all(repo, "the example project")
    set_pin(root, first)
    edit(root / "manifests" / "taskdefs" / "billing.yaml", "  retryCount: 2\n", "  retryCount: 3\n")
    head = commit_all(repo, "qa runs the first commit; generate_invoice retries 3 times")[:7]

    result = run_cli("--project", str(root), "promote", "dev", "qa")
    assert result.exit_code == 1
    assert f"error: dev does not run {head}: its server ({conductor.url}) differs from it in " in (
        result.stderr
    )
    assert "Apply it to dev first (`metasync apply --env dev`)" in result.stderr
    assert [b.name for b in repo.branches] == ["main"]  # nothing written

    applied = run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    result = run_cli("--project", str(root), "promote", "dev", "qa")
    assert result.exit_code == 0, result.stderr
    assert "Unverified" not in str(repo.commit(f"promote/qa-{head}").message)

    # someone edits dev by hand: dev no longer runs the commit
    api = httpx.Client(base_url=f"{conductor.url}/api", timeout=30)
    taskdef = api.get(f"/metadata/taskdefs/{prefix}generate_invoice").json()
    assert api.put("/metadata/taskdefs", json={**taskdef, "retryCount": 9}).status_code == 200
    result = run_cli("--project", str(root), "promote", "dev", "qa", "--branch", "again")
    assert result.exit_code == 1
    assert f"differs from it in 1 object(s): TaskDef {prefix}generate_invoice" in result.stderr


@pytest.mark.server
def test_status_matrix(history: tuple[Path, list[str]], prefix: str) -> None:
    root, _ = history
    assert run_cli("--project", str(root), "apply", "--env", "qa", "--auto-approve").exit_code == 0
    result = run_cli("--project", str(root), "status", "--env", "qa", "-o", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["formatVersion"] == 1
    assert document["environments"][0]["environment"] == "qa"
    cells = {r["name"]: r["cells"]["qa"] for r in document["resources"]}
    # qa runs the first commit, in sync with its server; dev (working tree) has two changes not yet in qa
    assert cells[f"{prefix}pick_item"]["state"] == "in-sync"
    assert cells[f"{prefix}pick_item"]["promotionPending"] is True
    assert cells[f"{prefix}invoicing"]["promotionPending"] is True
    assert cells[f"{prefix}validate_order"] == {
        "state": "in-sync",
        "fingerprint": cells[f"{prefix}validate_order"]["fingerprint"],
        "promotionPending": False,
    }
    assert sum(c["promotionPending"] for c in cells.values()) == 2

    text = run_cli("--project", str(root), "status", "--env", "qa").stdout
    assert f"TaskDef {prefix}pick_item" in text
    assert "(promotion pending)" in text


def test_changed_names_the_environments_a_commit_changes(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, (_, second, third) = history
    # the third commit changes manifests/: dev follows the working tree, qa and prod are pinned
    changed = run_cli("--project", str(root), "changed", "--base", second, "-o", "json")
    assert changed.exit_code == 0, changed.stderr
    assert json.loads(changed.stdout) == ["dev"]
    # a promotion moves only qa's pin
    assert run_cli("--project", str(root), "promote", "dev", "qa", "--unverified").exit_code == 0
    worktree = tmp_path / "promoted"
    git.Repo(root).git.worktree("add", str(worktree), f"promote/qa-{third[:7]}")
    result = run_cli("--project", str(worktree), "changed", "--base", third)
    assert (result.exit_code, result.stdout) == (0, "qa\n")
    # nothing changes between a commit and itself; a commit that is not there is an error
    assert run_cli("--project", str(root), "changed", "--base", third).stdout == ""
    missing = run_cli("--project", str(root), "changed", "--base", "no-such-branch")
    assert missing.exit_code == 1
    assert missing.stderr == (
        "error: --base 'no-such-branch' is not a commit in this repository\n"
        "  Use a commit hash (or a tag or branch) that exists; `git log` lists them (a CI checkout "
        "needs fetch-depth: 0 to see the base).\n"
    )


@pytest.mark.server
def test_two_clones_in_differently_named_folders_are_one_project(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server
) -> None:
    """Without metasync.yaml the name comes from the git remote (and the project's folder in the
    repository), never from the checkout's folder: two clones share one mark and one lock."""
    source = prefixed_example(tmp_path / "source" / "conductor", prefix, conductor.url)
    (source / "metasync.yaml").unlink()
    repo = new_repo(tmp_path / "source")
    commit_all(repo, "init")
    remote = tmp_path / "remotes" / "acme" / f"{prefix}orders.git"
    git.Repo.clone_from(str(tmp_path / "source"), str(remote), bare=True)
    first = git.Repo.clone_from(str(remote), str(tmp_path / "ci-job-1"))
    second = git.Repo.clone_from(str(remote), str(tmp_path / "laptop" / "my-checkout"))
    a = Path(first.working_tree_dir or "") / "conductor"
    b = Path(second.working_tree_dir or "") / "conductor"
    name = f"acme-{prefix}orders-conductor"
    assert (Project(a).mark, Project(a).lock_name) == (Project(b).mark, Project(b).lock_name)
    assert Project(a).mark == f"metasync/{name}"

    mine = ("--select", f"name={prefix}*")
    result = run_cli("--project", str(a), "apply", "--env", "dev", "--auto-approve", *mine)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"; project {name} (from the git remote)\n" in result.stdout
    result = run_cli("--project", str(b), "plan", "--env", "dev", "--detailed-exitcode", *mine)
    assert result.exit_code == 0, result.stdout + result.stderr
    drift = run_cli("--project", str(b), "drift", "--env", "dev", "-o", "json", *mine)
    assert json.loads(drift.stdout)["environments"][0]["inSync"] is True


def test_a_project_with_no_name_and_no_remote_writes_nothing(tmp_path: Path, prefix: str) -> None:
    root = prefixed_example(tmp_path / "folder-name-is-not-a-name", prefix, "http://127.0.0.1:9")
    (root / "metasync.yaml").unlink()
    assert run_cli("--project", str(root), "validate").exit_code == 0  # offline needs no name
    for args in (("apply", "--env", "dev", "--auto-approve"), ("unlock", "--env", "dev")):
        result = run_cli("--project", str(root), *args)
        assert result.exit_code == 1
        assert result.stderr == (
            "error: metasync.yaml: the project has no name: it marks what metasync writes on a "
            "server and names the apply lock, so every checkout must agree on it\n"
            "  Add `name: <project>` to metasync.yaml at the project's root (or work in a git "
            "repository with a remote: its path names the project).\n"
        )
