"""Project-level contracts: the layering of README.md (Design), and a valid CI workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def lint_imports(pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_layers_are_kept() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


def test_a_layer_violation_is_caught(tmp_path: Path) -> None:
    """The contract can fail: a model module that imports the CLI breaks it."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src", copy)
    (copy / "metasync" / "model" / "leak.py").write_text("import metasync.cli\nimport httpx\n")
    result = lint_imports(pythonpath=copy)
    assert result.returncode == 1
    assert "Layers point one way (README: Design) BROKEN" in result.stdout
    assert (
        "Only metasync.conductor (and metasync.notify, for webhooks) talk HTTP BROKEN"
        in result.stdout
    )
    assert "metasync.model.leak -> metasync.cli" in result.stdout


def test_a_kind_that_reaches_up_or_into_another_kind_is_caught(tmp_path: Path) -> None:
    """Kinds are plug-ins below the planner: one that imports the planner, or another kind,
    breaks the contracts that hold the shape."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src", copy)
    handler = copy / "metasync" / "model" / "kinds" / "event_handler.py"
    handler.write_text(
        handler.read_text()
        + "\nimport metasync.plan.planner\nimport metasync.model.kinds.workflow\n"
    )
    result = lint_imports(pythonpath=copy)
    assert result.returncode == 1
    assert "Operations above the planner, kinds below it BROKEN" in result.stdout
    assert "Each kind is a plug-in of its own BROKEN" in result.stdout
    assert "metasync.model.kinds.event_handler -> metasync.model.kinds.workflow" in result.stdout


def actionlint() -> str:
    found = shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed: run `make actionlint` (it builds it with Go)")
    return found


def test_ci_workflows_pass_actionlint() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows, "no workflow files"
    result = subprocess.run(
        [actionlint(), *map(str, workflows)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = subprocess.run(
        [actionlint(), str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "nope" in result.stdout
