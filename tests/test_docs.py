"""The reference in docs/ is the contract: checked against the real CLI and real JSON output.

* docs/cli.md has a section per command (heading with `metasync COMMAND`), whose options table
  names exactly the command's options and arguments: one added, renamed or removed on either side
  fails, naming what and where.
* docs/cli.md's exit-code table is the constants of metasync.cli.boundary.
* docs/json.md has a section per JSON output with a table of key paths; the paths of real output
  (a real plan, saved plan, drift, status, history, render and test report from a real server) are
  exactly the documented ones.
* Every relative link in docs/*.md and README.md resolves (file and #anchor).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
import pytest

from helpers import ROOT, run_cli
from metasync.cli import boundary, cli

DOCS = ROOT / "docs"
CLI_MD = DOCS / "cli.md"
JSON_MD = DOCS / "json.md"

# -- docs/cli.md against the click command tree ---------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_COMMAND_IN_HEADING = re.compile(r"`(metasync(?: [a-z][a-z0-9-]*)*)`")
_FIRST_CELL = re.compile(r"^\|\s*`([^`]+)`")
_LONG = re.compile(r"--[a-z][a-z0-9-]*")
_ARGUMENT = re.compile(r"^\[?([A-Z][A-Z0-9_]*)\]?(?:\.\.\.)?$")


@dataclass
class Section:
    title: str
    line: int
    text: list[str] = field(default_factory=list)


def sections(path: Path) -> list[Section]:
    """The file cut at every heading (a heading's section runs to the next heading)."""
    found: list[Section] = []
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            found.append(Section(heading.group(2).strip(), number))
        elif found:
            found[-1].text.append(line)
    return found


def walk(
    command: click.Command, path: tuple[str, ...] = ("metasync",)
) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in sorted(command.list_commands(ctx)):  # those loaded on demand too
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, (*path, name))


#: options every command takes after its name too, as the group's own (`metasync validate
#: --project sub`): documented once, under the global options, which say so
EVERY_COMMAND = {"--project", "--no-color"}


def cli_params(command: click.Command) -> set[str]:
    """The long option names (both sides of --x/--no-x) and argument metavars of a command,
    --help left out (every command has it), and the options every command shares with the group
    (documented with the group's)."""
    names: set[str] = set()
    if not isinstance(command, click.Group):
        shared = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
        missing = EVERY_COMMAND - shared
        assert not missing, f"`{command.name}` does not take {sorted(missing)} after its name"
    for param in command.params:
        if isinstance(param, click.Option):
            if param.hidden:
                continue
            names.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
        elif isinstance(param, click.Argument):
            metavar = param.metavar or (param.name or "").upper()
            names.add(metavar.strip("[]").removesuffix("..."))
    return names - {"--help"} - (set() if isinstance(command, click.Group) else EVERY_COMMAND)


def documented_params(section: Section) -> set[str]:
    """What a section's tables document: each row whose first cell is `--option ...` or an
    argument `NAME` / `[NAME]`."""
    names: set[str] = set()
    for line in section.text:
        cell = _FIRST_CELL.match(line)
        if cell is None:
            continue
        content = cell.group(1).strip()
        if "--" in content:
            names.update(_LONG.findall(content))
        else:
            argument = _ARGUMENT.match(content)
            if argument:
                names.add(argument.group(1))
    return names - {"--help"}


def command_sections() -> dict[str, Section]:
    found: dict[str, Section] = {}
    for section in sections(CLI_MD):
        named = _COMMAND_IN_HEADING.search(section.title)
        if named:
            assert named.group(1) not in found, (
                f"docs/cli.md:{section.line}: {named.group(1)} twice"
            )
            found[named.group(1)] = section
    return found


def test_every_command_and_option_is_documented_and_nothing_else() -> None:
    documented = command_sections()
    real = dict(walk(cli))
    problems = [
        f"`{name}` ({'group' if isinstance(cmd, click.Group) else 'command'}) has no section in "
        f"docs/cli.md: add a section headed  ## `{name}`  with an options table (| `--option"
        " VALUE` | meaning |) and an `Exit codes:` line"
        for name, cmd in real.items()
        if name not in documented
    ]
    problems += [
        f"docs/cli.md:{section.line}: `{name}` is documented but the CLI has no such command"
        for name, section in documented.items()
        if name not in real
    ]
    for name in sorted(real.keys() & documented.keys()):
        section, have = documented[name], cli_params(real[name])
        shown = documented_params(section)
        problems += [
            f"docs/cli.md:{section.line} (`{name}`): {p} is missing from the options table"
            for p in sorted(have - shown)
        ]
        problems += [
            f"docs/cli.md:{section.line} (`{name}`): {p} is documented but `{name} --help` has "
            "no such option or argument"
            for p in sorted(shown - have)
        ]
    assert not problems, "docs/cli.md and the CLI differ:\n" + "\n".join(problems)


def test_the_check_sees_an_option_the_docs_lack() -> None:
    """The comparison can fail both ways: a new option, and a documented one that went away."""
    section = command_sections()["metasync plan"]
    have = cli_params(dict(walk(cli))["metasync plan"])
    shown = documented_params(section)
    assert "--detailed-exitcode" in have & shown
    assert documented_params(Section("x", 1, ["| `--made-up X` | ... |"])) == {"--made-up"}
    assert documented_params(Section("x", 1, ["| `[PLAN]` | ... |", "| `-o, --output F` | |"])) == {
        "PLAN",
        "--output",
    }


def test_each_command_section_gives_its_exit_codes() -> None:
    codes = set(exit_code_table())
    problems = []
    for name, section in command_sections().items():
        if name == "metasync":
            continue
        lines = [line for line in section.text if line.startswith("Exit codes:")]
        if not lines:
            problems.append(f"docs/cli.md:{section.line} (`{name}`): no `Exit codes:` line")
            continue
        for code in map(int, re.findall(r"`(\d+)`", lines[0])):
            if code not in codes:
                problems.append(f"docs/cli.md:{section.line} (`{name}`): exit code {code} is not "
                                "in the exit-code table")  # fmt: skip
    assert not problems, "\n".join(problems)


# -- the exit-code table --------------------------------------------------------------------------


def exit_code_table() -> dict[int, str]:
    """`| code | constant | meaning |` rows of the section headed "Exit codes"."""
    (section,) = [s for s in sections(CLI_MD) if s.title == "Exit codes"]
    rows = {}
    for line in section.text:
        row = re.match(r"^\|\s*`?(\d+)`?\s*\|\s*`(EXIT_[A-Z_]+)`\s*\|", line)
        if row:
            rows[int(row.group(1))] = row.group(2)
    return rows


def test_the_exit_code_table_is_the_boundary_constants() -> None:
    constants = {
        value: name
        for name, value in vars(boundary).items()
        if name.startswith("EXIT_") and isinstance(value, int)
    }
    documented = exit_code_table()
    problems = [
        f"exit code {code}: boundary.py has {constants.get(code)}, docs/cli.md has "
        f"{documented.get(code)}"
        for code in sorted(constants.keys() | documented.keys())
        if constants.get(code) != documented.get(code)
    ]
    assert not problems, (
        "docs/cli.md's exit-code table (## Exit codes) differs from "
        "src/metasync/cli/boundary.py:\n" + "\n".join(problems)
    )


# -- docs/json.md against real JSON ---------------------------------------------------------------

#: each JSON output and the words its section's heading holds
FORMATS = {
    "render": "metasync render -o json",
    "plan": "metasync plan -o json",
    "saved plan": "metasync plan --out",
    "drift": "metasync drift -o json",
    "status": "metasync status -o json",
    "history": "metasync history -o json",
    "test report": "metasync test -o json",
    # compared in test_reconcile.py (a control plane and its workers)
    "reconcile status": "metasync status --control",
}
_PATH_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]*)\|")


@dataclass(frozen=True)
class Documented:
    paths: dict[str, str]  # path -> type as written
    line: int

    @property
    def opaque(self) -> set[str]:
        """Paths whose value is any JSON (Conductor's objects, before/after values): what is
        under them is not the format's."""
        return {p for p, kind in self.paths.items() if kind.strip().startswith("any")}

    @property
    def optional(self) -> set[str]:
        """Paths whose type says "optional": present in some documents only, so the real output
        need not have them (every other documented path must be there)."""
        return {p for p, kind in self.paths.items() if "optional" in kind}


def documented_format(name: str) -> Documented:
    marker = FORMATS[name]
    matching = [s for s in sections(JSON_MD) if marker in s.title.replace("`", "")]
    assert len(matching) == 1, f"docs/json.md needs one heading with `{marker}` ({name})"
    (section,) = matching
    paths = {}
    for line in section.text:
        row = _PATH_ROW.match(line)
        if row and row.group(1) != "path":
            paths[row.group(1)] = row.group(2)
    assert paths, f"docs/json.md:{section.line}: no `| path | type | meaning |` table"
    return Documented(paths, section.line)


def key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Every key of every object in ``value``: `a.b`, `list[].key` (list items merged)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from key_paths(inner, path)
    elif isinstance(value, list):
        for item in value:
            yield from key_paths(item, f"{prefix}[]")


def _matches(real: str, pattern: str) -> bool:
    """`cells.<env>.state` matches `cells.dev.state`: a `<...>` segment is any key."""
    regex = re.escape(pattern)
    regex = re.sub(r"<[^>]*>", "[^.]+", regex.replace(r"\<", "<").replace(r"\>", ">"))
    return re.fullmatch(regex, real) is not None


def compare(name: str, documents: list[Any]) -> list[str]:
    """What the real ``documents`` of format ``name`` and its docs disagree on, both ways."""
    documented = documented_format(name)
    opaque = documented.opaque
    real: set[str] = set()
    for document in documents:
        for path in key_paths(document):
            if not any(path.startswith(o + ".") or path.startswith(o + "[]") for o in opaque):
                real.add(path)
    where = f"docs/json.md:{documented.line} ({FORMATS[name]})"
    problems = [
        f"{where}: `{path}` is in the real output but not documented"
        for path in sorted(real)
        if not any(_matches(path, p) for p in documented.paths)
    ]
    problems += [
        f"{where}: `{pattern}` is documented but the real output has no such key"
        for pattern in documented.paths
        if pattern not in documented.optional and not any(_matches(path, pattern) for path in real)
    ]
    return problems


def test_key_paths_and_the_comparison_can_fail_both_ways() -> None:
    assert list(key_paths({"a": [{"b": 1}, {"c": {"d": None}}], "e": [1]})) == [
        "a", "a[].b", "a[].c", "a[].c.d", "e",
    ]  # fmt: skip
    assert _matches("resources[].cells.dev.state", "resources[].cells.<env>.state")
    assert not _matches("resources[].cells.dev", "resources[].cells.<env>.state")
    plan = documented_format("plan")
    assert "changes[].fields[].before" in plan.opaque
    assert any("formatVersion" in p for p in compare("plan", [{"unknownKey": 1}]))
    assert any("unknownKey" in p for p in compare("plan", [{"unknownKey": 1}]))
    optional = Documented({"a": "string", "b": "integer, optional"}, 1)
    assert optional.optional == {"b"}


def cli_json(project: Path, *args: str, codes: tuple[int, ...] = (0,)) -> Any:
    result = run_cli("--project", str(project), *args)
    assert result.exit_code in codes, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.mark.server
def test_every_key_of_real_json_output_is_documented(
    applied_example: Path, prefix: str, api: httpx.Client, tmp_path: Path
) -> None:
    """The example applied to a real server, then moved on both sides so that every optional
    part of the outputs is there: a live edit, a git edit, a deleted and an unmanaged object."""
    project = applied_example
    taskdef = api.get(f"/metadata/taskdefs/{prefix}charge_payment").json()
    taskdef["retryCount"] = 9
    assert api.put("/metadata/taskdefs", json=taskdef).status_code == 200
    path = project / "manifests" / "workflows" / "payment_processing.yaml"
    path.write_text(path.read_text().replace("timeoutSeconds: 3600", "timeoutSeconds: 5400", 1))
    assert api.delete(f"/metadata/workflow/{prefix}customer_notification/1").status_code == 200
    made = {"name": f"{prefix}made_in_the_ui", "ownerEmail": "ui@example.com", "retryCount": 1}
    assert api.post("/metadata/taskdefs", json=[made]).status_code == 200
    select = ("--select", f"name={prefix}*")

    saved = tmp_path / "dev.plan"
    outputs = {
        "render": [cli_json(project, "render", "--env", "dev", "-o", "json")],
        "plan": [cli_json(project, "plan", "--env", "dev", "-o", "json", *select, "--out", str(saved))],
        "drift": [cli_json(project, "drift", "--all", "-o", "json", *select, codes=(2,))],
        "status": [cli_json(project, "status", "-o", "json")],
        "history": [cli_json(project, "history", "--env", "dev", "-o", "json")],
        "test report": [cli_json(project, "test", "--env", "dev", "-o", "json",
                                 "--select", f"name={prefix}paid_invoice_is_booked_as_revenue")],
    }  # fmt: skip
    outputs["saved plan"] = [json.loads(saved.read_text())]
    assert outputs["plan"][0]["changes"]
    assert outputs["plan"][0]["unmanaged"]
    assert outputs["history"][0]["revisions"]
    assert outputs["test report"][0]["tests"]
    problems = [p for name, documents in outputs.items() for p in compare(name, documents)]
    assert not problems, "docs/json.md and the real output differ:\n" + "\n".join(problems)


def test_every_documented_format_is_checked() -> None:
    """A JSON output documented in docs/json.md is compared with real output above."""
    headings = [s.title.replace("`", "") for s in sections(JSON_MD)]
    with_table = [h for h in headings if re.search(r"metasync [a-z]+ .*(-o json|--out)", h)]
    unchecked = [h for h in with_table if not any(m in h for m in FORMATS.values())]
    assert not unchecked, f"docs/json.md formats no test compares with real output: {unchecked}"


# -- links ----------------------------------------------------------------------------------------

_LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(s.title) for s in sections(path)}


def test_every_relative_link_resolves() -> None:
    problems = []
    for document in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = document.read_text()
        fenced = False
        for number, line in enumerate(text.splitlines(), 1):
            if line.startswith("```"):
                fenced = not fenced
            if fenced:
                continue
            for target in _LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue
                file_part, _, anchor = target.partition("#")
                linked = (document.parent / file_part).resolve() if file_part else document
                where = f"{document.relative_to(ROOT)}:{number}: {target}"
                if not linked.exists():
                    problems.append(f"{where}: no such file")
                elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                    problems.append(f"{where}: no heading with anchor #{anchor}")
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_no_document_points_to_a_design_file_users_do_not_have() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in [ROOT / "README.md", *DOCS.glob("*.md"), *(ROOT / "src").rglob("*.py")]
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "DESIGN.md" in line
    ]
    assert not offenders, f"cite docs/ instead of DESIGN.md: {offenders}"
