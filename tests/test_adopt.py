"""`metasync drift --adopt` against real servers of both flavours: live edits become a branch where git matches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import conductor_server
from helpers import committed_example, git, run_cli

pytestmark = pytest.mark.server


@pytest.fixture
def repo(tmp_path: Path, prefix: str, conductor: conductor_server.Server) -> Path:
    root = committed_example(tmp_path / "repo", prefix, conductor.url)
    result = run_cli("--project", str(root), "apply", "--env", "dev", "--auto-approve")
    assert result.exit_code == 0, result.stdout
    return root


def edit_workflow(api: httpx.Client, name: str, change: Any) -> None:
    """The way the UI edits: the whole definition back, ownerApp included."""
    workflow = api.get(f"/metadata/workflow/{name}", params={"version": 1}).json()
    change(workflow)
    assert api.put("/metadata/workflow", json=[workflow]).status_code == 200


def edit_taskdef(api: httpx.Client, name: str, **fields: Any) -> None:
    taskdef = api.get(f"/metadata/taskdefs/{name}").json()
    taskdef.update(fields)
    assert api.put("/metadata/taskdefs", json=taskdef).status_code == 200


def test_adopted_live_edits_leave_nothing_to_report_on_their_branch(
    repo: Path, prefix: str, api: httpx.Client, tmp_path: Path
) -> None:
    # 1. a field written as a literal in its manifest: the manifest is edited in place
    edit_taskdef(api, f"{prefix}pick_item", retryCount=6, description="Pick a line (by hand).")

    # 2. inside a workflow without an overlay: a field of a nested task, and a task inserted
    def invoicing(workflow: dict[str, Any]) -> None:
        workflow["timeoutSeconds"] = 86400
        workflow["tasks"][0]["inputParameters"]["currency"] = "${workflow.input.currency}"
        workflow["tasks"].insert(1, {"name": "audit", "taskReferenceName": "audit",
                                     "type": "WAIT", "inputParameters": {}})  # fmt: skip

    edit_workflow(api, f"{prefix}invoicing", invoicing)
    # 3. a value that comes from a variable: dev's overlay takes it
    edit_taskdef(api, f"{prefix}charge_payment", retryCount=4)

    # 4. a workflow dev already overlays: its overlay is rewritten
    def fulfillment(workflow: dict[str, Any]) -> None:
        workflow["timeoutSeconds"] = 7200

    edit_workflow(api, f"{prefix}order_fulfillment", fulfillment)

    mine = ("--select", f"name={prefix}*")
    result = run_cli("--project", str(repo), "drift", "--env", "dev", *mine, "--adopt")
    assert result.exit_code == 2, result.stdout + result.stderr  # the checkout still drifts
    head = git(repo, "rev-parse", "HEAD")
    branch = f"adopt/dev-{head[:7]}"
    assert f"Adopted on branch {branch}" in result.stderr
    assert (
        f"dev: TaskDef {prefix}pick_item: description, retryCount -> manifests/taskdefs/fulfillment.yaml"
        in result.stderr
    )
    assert (
        f"dev: TaskDef {prefix}charge_payment: retryCount -> environments/dev/overlays/{prefix}charge_payment.yaml"
        in result.stderr
    )
    assert "-> environments/dev/overlays/order_fulfillment.yaml" in result.stderr
    assert git(repo, "status", "--porcelain") == ""  # the checkout is untouched
    assert git(repo, "rev-parse", "HEAD") == head

    review = tmp_path / "review"
    git(repo, "worktree", "add", "-q", str(review), branch)
    after = run_cli("--project", str(review), "drift", "--env", "dev", *mine)
    assert after.exit_code == 0, after.stdout + after.stderr
    assert after.stdout.rstrip().endswith("): in sync")

    # edited in place: comments, other documents and placeholders stay
    fulfillment_text = (review / "manifests" / "taskdefs" / "fulfillment.yaml").read_text()
    assert fulfillment_text.startswith(
        (repo / "manifests" / "taskdefs" / "fulfillment.yaml").read_text().splitlines()[0]
    )
    assert "  retryCount: 6\n" in fulfillment_text
    assert "ownerEmail: ((vars.owner_email))" in fulfillment_text
    invoicing_text = (review / "manifests" / "workflows" / "invoicing.yaml").read_text()
    assert invoicing_text.startswith(  # the editor's schema line stays first
        "# yaml-language-server: $schema=../../schemas/manifest.schema.json\n"
        "# Pay by invoice: issue it, wait for the payment signal"
    )
    assert "uri: ((vars.ledger_url))/v1/receivables" in invoicing_text
    spec = yaml.safe_load(invoicing_text)["spec"]
    assert [t["taskReferenceName"] for t in spec["tasks"]][:3] == [
        "invoice",
        "audit",
        "send_invoice",
    ]
    payments = (review / "manifests" / "taskdefs" / "payments.yaml").read_text()
    assert payments == (repo / "manifests" / "taskdefs" / "payments.yaml").read_text()
    overlay = (review / "environments" / "dev" / "overlays" / "order_fulfillment.yaml").read_text()
    assert overlay.startswith(  # its comments stay
        "# yaml-language-server: $schema=../../../schemas/overlay.schema.json\n"
        "# dev does not wait two hours for a carrier"
    )
    assert "  timeoutSeconds: 7200\n" in overlay
    message = git(repo, "log", "-1", "--format=%B", branch)
    assert message.startswith("Adopt live edits on dev\n\n- dev: ")


def test_nothing_to_adopt_and_a_dirty_checkout(repo: Path, prefix: str, api: httpx.Client) -> None:
    mine = ("--select", f"name={prefix}*")
    quiet = run_cli("--project", str(repo), "drift", "--env", "dev", *mine, "--adopt")
    assert quiet.exit_code == 0
    assert "Nothing to adopt: no object was edited on a server." in quiet.stderr
    edit_taskdef(api, f"{prefix}pick_item", retryCount=6)
    (repo / "manifests" / "notes.yaml").write_text("# not committed yet\n")
    dirty = run_cli("--project", str(repo), "drift", "--env", "dev", *mine, "--adopt")
    assert dirty.exit_code == 1
    assert (
        "manifests/ has uncommitted changes: the adoption branch starts from HEAD" in dirty.stderr
    )
