"""The README's "Getting started", run as a new user would: from an empty folder to an applied
project with `init`, one manifest and `apply`, on both servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import conductor_server

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- tests/test_getting_started.py runs the next block"


def readme_block() -> str:
    """The shell block the README marks as the one this test runs."""
    found = re.search(re.escape(MARKER) + r"[^\n]*\n```sh\n(.*?)\n```\n", (ROOT / "README.md").read_text(), re.S)  # fmt: skip
    assert found, f"README.md has no ```sh block after {MARKER!r}"
    return found.group(1)


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in bash -e, with this environment's metasync first on PATH, nothing inherited
    that could steer it (no project, no terminal)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], check=False, cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)  # fmt: skip


def written(root: Path) -> dict[str, bytes]:
    """The project's files (not metasync's local state in .metasync/)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".metasync" not in p.parts
    }


def test_readme_starts_with_the_two_commands() -> None:
    first = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert first is not None
    assert [line.split()[:2] for line in first.group(1).splitlines()] == [
        ["make", "demo"],
        ["make", "test"],
    ]


def test_readme_block_is_what_a_user_types() -> None:
    block = readme_block()
    assert "metasync init" in block
    assert "metasync apply --env dev --auto-approve" in block
    assert "--project" not in block  # found from the folder, as a user would run it


@pytest.mark.server
def test_getting_started(tmp_path: Path, prefix: str, conductor: conductor_server.Server,
                         api: httpx.Client) -> None:  # fmt: skip
    """Only the README's lines, with this test's server and names (the server is shared)."""
    script = readme_block().replace("http://localhost:8080", conductor.url)
    script = script.replace("--name orders", f"--name {prefix}orders")
    script = re.sub(r"\b(send_greeting|greeting)\b", rf"{prefix}\1", script)
    assert conductor.url in script
    assert f"{prefix}greeting" in script
    done = bash(script, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid: 2 resources for dev" in done.stdout
    assert "Recorded as revision 1 of dev" in done.stdout
    workflow = api.get(f"/metadata/workflow/{prefix}greeting", params={"version": 1})
    assert workflow.status_code == 200, workflow.text
    assert workflow.json()["ownerApp"].startswith(f"metasync/{prefix}orders")
    assert workflow.json()["tasks"][0]["name"] == f"{prefix}send_greeting"
    assert api.get(f"/metadata/taskdefs/{prefix}send_greeting").status_code == 200
    # and from a folder inside the project, the server now matches git
    again = bash("cd manifests && metasync plan --env dev --detailed-exitcode", tmp_path / "orders")
    assert again.returncode == 0, again.stdout + again.stderr


@pytest.mark.server
def test_export_from_an_empty_folder_needs_only_the_server(
    tmp_path: Path, prefix: str, conductor: conductor_server.Server, api: httpx.Client
) -> None:
    """`export --server URL` without a project: DIR becomes one, and it plans as a no-op."""
    taskdef = {"name": f"{prefix}by_hand", "ownerEmail": "ui@example.com", "retryCount": 4}
    assert api.post("/metadata/taskdefs", json=[taskdef]).status_code == 200
    workflow = {"name": f"{prefix}flow", "version": 1, "ownerEmail": "ui@example.com",
                "schemaVersion": 2, "tasks": [{"name": f"{prefix}by_hand",
                                               "taskReferenceName": "one", "type": "SIMPLE"}]}  # fmt: skip
    assert api.post("/metadata/workflow", json=workflow).status_code == 200
    select = f"name={prefix}*"
    # no project here: export says how to name the server, and writes nothing
    refused = bash(f"metasync export --env dev --out adopted --select '{select}'", tmp_path)
    assert refused.returncode == 1
    assert "export reads an environment's server from the project" in refused.stderr
    assert "metasync export --env dev --server URL --out DIR" in refused.stderr
    assert list(tmp_path.iterdir()) == []
    export = f"metasync export --env dev --server {conductor.url} --out adopted --select '{select}'"
    done = bash(export, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "adopted"
    assert (out / "metasync.yaml").read_text().endswith("name: adopted\n")
    assert f"  url: {conductor.url}\n" in (out / "environments/dev/environment.yaml").read_text()
    assert sorted(p.name for p in (out / "manifests").rglob("*.yaml")) == sorted(
        [f"{prefix}by_hand.yaml", f"{prefix}flow.yaml"]
    )
    files = written(out)
    plan = bash(f"cd adopted/manifests && metasync plan --env dev --select '{select}' "
                "--detailed-exitcode", tmp_path)  # fmt: skip
    assert plan.returncode == 0, plan.stdout + plan.stderr
    again = bash(export, tmp_path)  # exporting again changes no byte
    assert again.returncode == 0, again.stderr
    assert written(out) == files
    # and a server that cannot be reached leaves no half-written project
    failed = bash("metasync export --env dev --server http://127.0.0.1:9 --out other", tmp_path)
    assert failed.returncode == 1
    assert "cannot reach the dev server (http://127.0.0.1:9)" in failed.stderr
    assert not (tmp_path / "other").exists()
