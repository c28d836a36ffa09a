"""Start-up: a command imports what it needs, not what every other command needs.

Each check runs metasync in a fresh interpreter (in-process, the test session has imported
everything already) and reads which modules it loaded. No timing: what is not imported costs
nothing, on any machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

import conductor_server
from helpers import prefixed_example
from metasync.cli import FAMILIES, cli

#: what the common path (validate, render, plan, apply, --help, --version) never needs: GitPython
#: (promotion pins, `changed`, `promote`), ruamel.yaml (adopt), the workflow-test runner, the
#: JSON Schemas of `metasync schema`, the apply machinery, and the other commands' modules
NOT_ON_THE_COMMON_PATH = (
    "git",
    "ruamel.yaml",
    "platformdirs",
    "metasync.adopt",
    "metasync.testing",
    "metasync.manifests.json_schema",
    "metasync.operations.adopt",
    "metasync.operations.apply",
    "metasync.operations.workflow_tests",
    "metasync.apply.executor",
    "metasync.cli.reports",
    "metasync.cli.schema",
    "metasync.cli.testing",
)

#: run metasync's entry point, then write the names of the loaded modules to argv[1]
#: (main() ends the process with os._exit once its output is flushed: no atexit handler runs)
_RUN = """\
import os, sys
out = sys.argv.pop(1)
def done(code, _exit=os._exit):
    open(out, "w").write("\\n".join(sorted(sys.modules)))
    _exit(code)
os._exit = done
from metasync.cli import main
main()
"""


def loaded(tmp_path: Path, *args: str, cwd: Path | None = None) -> set[str]:
    """The modules a fresh ``metasync ARGS`` process had loaded when it exited."""
    out = tmp_path / "modules.txt"
    result = subprocess.run([sys.executable, "-c", _RUN, str(out), *args], cwd=cwd or tmp_path,
                            capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert out.exists(), result.stderr
    return set(out.read_text().split())


def unneeded(modules: set[str]) -> list[str]:
    return [name for name in NOT_ON_THE_COMMON_PATH if name in modules]


def test_importing_the_cli_loads_no_command_it_does_not_run(tmp_path: Path) -> None:
    out = tmp_path / "modules.txt"
    code = f"import sys, metasync.cli; open({str(out)!r}, 'w').write('\\n'.join(sys.modules))"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert unneeded(set(out.read_text().split())) == []


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["plan", "--help"]])
def test_help_and_version_load_only_the_common_path(tmp_path: Path, args: list[str]) -> None:
    modules = loaded(tmp_path, *args)
    if args == ["--help"]:  # the list of commands names each one: their modules load
        assert {"metasync.cli.reports", "metasync.cli.testing"} <= modules
    else:
        assert unneeded(modules) == []


@pytest.mark.server
def test_a_plan_loads_only_what_planning_needs(
    conductor: conductor_server.Server, prefix: str, tmp_path: Path
) -> None:
    root = prefixed_example(tmp_path / "project", prefix, conductor.url)
    modules = loaded(tmp_path, "plan", "--env", "dev", cwd=root)
    assert "metasync.plan.planner" in modules  # it did plan
    assert unneeded(modules) == []


def test_a_command_runs_from_its_own_module(tmp_path: Path) -> None:
    """``metasync schema`` loads the schema module (and git only where a command reads it)."""
    modules = loaded(tmp_path, "schema", "--kind", "project")
    assert "metasync.cli.schema" in modules
    assert "metasync.cli.testing" not in modules
    assert "git" not in modules


def test_every_command_of_a_family_module_is_listed_where_it_lives() -> None:
    """A command added to a family module without a line in FAMILIES would never be found."""
    ctx = click.Context(cli, info_name="metasync")
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert command.callback is not None, name
        module = command.callback.__module__
        assert FAMILIES.get(name, "metasync.cli") == module, (name, module)
    assert set(FAMILIES) <= set(cli.commands)  # every listed one registered by its module
