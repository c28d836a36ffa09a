"""A new user's first minute, offline: `metasync init`, the project found from a folder inside it,
completion of environment names, and a wheel that installs and knows its version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import git, write_project
from metasync.cli import cli

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_in(folder: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """metasync in-process, run from ``folder`` (no --project)."""
    here = Path.cwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    finally:
        os.chdir(here)
    return result.exit_code, result.stdout, result.stderr


# -- init ---------------------------------------------------------------------------------------


def test_init_writes_a_project_that_validates(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.pyc")  # kept, the line added after it
    code, out, err = run_in(tmp_path, "init", "--name", "orders", "--server", "http://conductor:8080/")  # fmt: skip
    assert (code, err) == (0, "")
    assert "Started the metasync project orders:" in out
    assert "metasync plan --env dev" in out
    assert "It is not in a git repository yet: `git init`" in out
    assert (tmp_path / "metasync.yaml").read_text().endswith("name: orders\n")
    env = (tmp_path / "environments/dev/environment.yaml").read_text()
    assert "server:\n  url: http://conductor:8080\n" in env
    assert "  maxDeletes: 10\n" in env
    assert (tmp_path / "manifests/README.md").is_file()
    assert (tmp_path / ".gitignore").read_text() == "*.pyc\n.metasync/\n"
    assert run_in(tmp_path, "validate")[:2] == (0, "valid: 0 resources for dev (0 warning(s))\n")
    # the environment file is every default written out: it loads as the defaults
    from metasync.manifests.environment import EnvironmentConfig, Policy, load_environment

    config = load_environment(tmp_path, "dev").config
    assert config.policy == Policy()
    assert config == EnvironmentConfig.model_validate({"server": {"url": "http://conductor:8080"}})


@pytest.mark.parametrize("flavour", ["oss", "3.15"])
def test_init_writes_the_schemas_its_files_name_for_editors(tmp_path: Path, flavour: str) -> None:
    """Each YAML file init writes names, on its first line, a schema that init wrote too and that
    the file validates against: an editor completes and checks it from the first minute."""
    import json

    import jsonschema

    from metasync.manifests.json_schema import dumps, json_schema

    args = ("init", "--name", "orders", "--server", "http://c:8080", "--flavour", flavour)
    assert run_in(tmp_path, *args)[0] == 0
    named = {}
    for file in ("metasync.yaml", "environments/dev/environment.yaml"):
        first = (tmp_path / file).read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), first
        schema_file = (tmp_path / file).parent / first.partition("$schema=")[2]
        assert schema_file.is_file(), schema_file
        data = __import__("yaml").safe_load((tmp_path / file).read_text())
        jsonschema.validate(data, json.loads(schema_file.read_text()))
        named[file] = schema_file.resolve().relative_to(tmp_path)
    suffix = "-3.15" if flavour == "3.15" else ""
    assert named == {
        "metasync.yaml": Path(f"schemas/project{suffix}.schema.json"),
        "environments/dev/environment.yaml": Path(f"schemas/environment{suffix}.schema.json"),
    }
    manifest = tmp_path / f"schemas/manifest{suffix}.schema.json"
    assert manifest.read_text() == dumps(json_schema("manifest", flavour))  # type: ignore[arg-type]
    assert (
        "$schema=../schemas/manifest.schema.json" in (tmp_path / "manifests/README.md").read_text()
    )


def test_init_refuses_to_overwrite_a_project_and_names_what_exists(tmp_path: Path) -> None:
    write_project(tmp_path, {})
    before = (tmp_path / "environments/dev/environment.yaml").read_text()
    code, _, err = run_in(tmp_path, "init", "--name", "x", "--server", "http://a:1")
    assert code == 1
    assert "there is a metasync project here already: metasync.yaml, manifests/, environments/ exist" in err  # fmt: skip
    assert "Nothing was written" in err
    assert (tmp_path / "environments/dev/environment.yaml").read_text() == before
    # nor a project inside another one's folders
    (tmp_path / "manifests/flows").mkdir()
    code, _, err = run_in(tmp_path / "manifests/flows", "init", "--name", "x", "--server", "http://a:1")  # fmt: skip
    assert code == 1
    assert f"{tmp_path / 'manifests/flows'} is inside the metasync project at {tmp_path}" in err
    assert list((tmp_path / "manifests/flows").iterdir()) == []


def test_init_without_a_terminal_names_the_flags_it_needs(tmp_path: Path) -> None:
    code, out, err = run_in(tmp_path, "init")
    assert (code, out) == (1, "")
    assert err.startswith("error: init needs --name NAME and --server URL, and there is no terminal to ask\n")  # fmt: skip
    assert run_in(tmp_path, "init", "--name", "x")[2].startswith("error: init needs --server URL,")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "a b", "--server", "http://a:1"], "--name 'a b' cannot name a project"),
        (
            ["--name", "x", "--server", "localhost:8080"],
            "--server 'localhost:8080' is not an http:// or https:// URL",
        ),
        (
            ["--name", "x", "--server", "http://a:1", "--env", "../prod"],
            "--env '../prod' cannot name an environment",
        ),
    ],
)
def test_init_checks_what_it_is_given(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = run_in(tmp_path, "init", *args)
    assert code == 1
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_init_takes_the_name_from_the_git_remote(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    git(tmp_path, "remote", "add", "origin", "git@github.com:acme/platform.git")
    (tmp_path / "conductor").mkdir()
    asked = run_in(tmp_path / "conductor", "init")[2]  # the remote names it: only --server lacks
    assert asked.startswith("error: init needs --server URL, and there is no terminal to ask\n")
    code, out, _ = run_in(tmp_path / "conductor", "init", "--env", "qa", "--server", "http://a:1")
    assert code == 0
    assert "Started the metasync project acme-platform-conductor (named after the git remote):" in out  # fmt: skip
    assert (tmp_path / "conductor/metasync.yaml").read_text().endswith("name: acme-platform-conductor\n")  # fmt: skip
    assert (tmp_path / "conductor/environments/qa/environment.yaml").is_file()
    assert "git init" not in out


def test_init_asks_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("metasync.cli.init._interactive", lambda: True)
    target = tmp_path / "orders"
    code, out, err = run_in(tmp_path, "init", "orders", stdin="bad name\norders\n\nhttp://c:8080\n")
    assert code == 0, err
    assert "Project name (marks what metasync writes on servers) [orders]:" in err
    assert "cannot name a project" in err  # asked again
    assert "First environment [dev]:" in err
    assert "dev's Conductor server [http://localhost:8080]:" in err
    assert "Started the metasync project orders in orders:" in out
    assert "metasync --project orders validate" in out
    assert "url: http://c:8080\n" in (target / "environments/dev/environment.yaml").read_text()


def test_export_without_a_project_asks_for_the_server_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("metasync.cli.reports._interactive", lambda: True)
    code, _, err = run_in(tmp_path, "export", "--env", "dev", "--out", "x", stdin="http://127.0.0.1:9\n")  # fmt: skip
    assert code == 1
    assert "the export starts a project of its own" in err
    assert "dev's Conductor server [http://localhost:8080]:" in err
    assert "cannot reach the dev server (http://127.0.0.1:9)" in err  # the answer was used
    assert list(tmp_path.iterdir()) == []  # nothing half-written


# -- finding the project ------------------------------------------------------------------------


def test_the_project_is_found_from_a_folder_inside_it(tmp_path: Path) -> None:
    write_project(tmp_path, {"manifests/flows/t.yaml": "apiVersion: metasync/v1\nkind: TaskDef\nmetadata: {name: t}\nspec: {ownerEmail: a@b.c}\n"})  # fmt: skip
    for folder in (tmp_path, tmp_path / "manifests/flows", tmp_path / "environments/dev"):
        assert run_in(folder, "validate")[:2] == (0, "valid: 1 resources for dev (0 warning(s))\n")
    # --project still names it from anywhere
    elsewhere = tmp_path.parent
    assert run_in(elsewhere, "--project", str(tmp_path), "validate")[0] == 0


def test_without_a_project_the_error_says_what_was_looked_for(tmp_path: Path) -> None:
    deep = tmp_path / "a/b"
    deep.mkdir(parents=True)
    code, _, err = run_in(deep, "validate")
    assert code == 1
    assert err.startswith(
        f"error: not a metasync project: no metasync.yaml (nor manifests/ and environments/) in {deep} or any folder above it up to "
    )
    assert "Run `metasync init` to start a project here, or pass --project DIR" in err


def test_the_search_stops_at_the_git_repository(tmp_path: Path) -> None:
    write_project(tmp_path, {})  # a project around the repository is not the repository's
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    git(repo, "init", "-q")
    code, _, err = run_in(repo / "sub", "validate")
    assert code == 1
    assert f"in {repo / 'sub'} or any folder above it up to {repo}\n" in err


# -- completion ---------------------------------------------------------------------------------


def protocol(words: str) -> dict[str, str]:
    """click's bash completion protocol: complete the last word of ``words``."""
    return {"_METASYNC_COMPLETE": "bash_complete", "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1)}  # fmt: skip


def complete(cwd: Path, words: str) -> list[str]:
    """What bash completion offers for the last word of ``words``, run from ``cwd``."""
    here = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, [], env=protocol(words), prog_name="metasync")
    finally:
        os.chdir(here)
    assert (result.exit_code, result.stderr) == (0, "")
    return [line for line in result.stdout.splitlines() if line]


def test_env_completes_the_project_environments(tmp_path: Path) -> None:
    write_project(tmp_path, {"environments/qa/environment.yaml": "server: {url: http://a:1}\n",
                             "environments/prod/environment.yaml": "server: {url: http://a:2}\n"})  # fmt: skip
    inside = tmp_path / "manifests"
    assert complete(inside, "metasync plan --env ") == ["plain,dev", "plain,prod", "plain,qa"]
    assert complete(inside, "metasync drift --env p") == ["plain,prod"]
    assert complete(inside, "metasync test --env q") == ["plain,qa"]
    assert complete(inside, "metasync promote d") == ["plain,dev"]
    assert complete(tmp_path.parent, f"metasync --project {tmp_path} apply --env q") == ["plain,qa"]
    assert complete(tmp_path.parent, "metasync plan --env ") == []  # no project: nothing, no error
    assert "plain,init" in complete(tmp_path, "metasync in")
    # the installed command speaks the protocol (what the shell's completion script calls)
    done = subprocess.run([str(BIN / "metasync")], cwd=inside, env={**os.environ, **protocol("metasync render --env d")},
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "plain,dev\n", "")


# -- installing ---------------------------------------------------------------------------------


def build_wheel(source: Path, out: Path) -> Path:
    """``pip wheel`` of ``source``, offline (the build backend is in this environment)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(out), str(source)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("metasync-*.whl")
    return wheel


def test_the_wheel_installs_and_runs(tmp_path: Path) -> None:
    wheel = build_wheel(ROOT, tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert "metasync/py.typed" in names
    assert "metasync/cli/init.py" in names
    version = wheel.name.split("-")[1]  # from git: a tag, or commits since one (0.1.1.devN+g...)
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+\+g[0-9a-f]+(\.d\d{8})?)?", version), version
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-index", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    entry = "import sys; from metasync.cli import main; import metasync; print(metasync.__file__, file=sys.stderr); main()"  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}

    def installed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", entry, *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, check=False)  # fmt: skip

    shown = installed("--version")
    assert shown.stderr.startswith(str(target / "metasync"))  # the wheel's copy ran
    assert (shown.returncode, shown.stdout) == (0, f"metasync, version {version}\n")
    checked = installed("--project", str(ROOT), "validate", "--env", "dev")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("valid: ")


@pytest.mark.parametrize(
    ("archival", "version"),
    [
        (None, "0.1.0"),  # a copy without history: the fallback version
        ("node: 0123456789abcdef0123456789abcdef01234567\ndescribe-name: v0.1.0\n", "0.1.0"),
        (
            "node: 0123456789abcdef0123456789abcdef01234567\ndescribe-name: v0.2.0-3-g0123456\n",
            "0.2.1.dev3+g0123456",
        ),
    ],
    ids=["no-history", "tag-archive", "archive-after-tag"],
)
def test_a_copy_without_git_builds_with_its_version(tmp_path: Path, archival: str | None,
                                                    version: str) -> None:  # fmt: skip
    """A tarball of the repository (what `uses: owner/metasync@v0.1.0` downloads: git archive,
    .git_archival.txt filled in) or any copy without git history still builds."""
    source = tmp_path / "copy"
    shutil.copytree(ROOT / "src" / "metasync", source / "src" / "metasync",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md", ".git_archival.txt"):
        shutil.copy(ROOT / name, source / name)
    if archival is not None:
        (source / ".git_archival.txt").write_text(archival)
    assert build_wheel(source, tmp_path / "dist").name == f"metasync-{version}-py3-none-any.whl"
