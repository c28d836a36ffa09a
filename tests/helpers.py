"""Small builders for projects on disk."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner, Result

from metasync.cli import cli

ENVIRONMENT = """\
server:
  url: http://127.0.0.1:18081
vars:
  owner_email: team@example.com
  retries: 4
  base_url: https://api.example.com
secrets:
  api_token: API_TOKEN_DEV
"""


def write_project(
    root: Path, files: Mapping[str, str | bytes], environment: str = ENVIRONMENT
) -> Path:
    """A project with one environment `dev` and the given files (paths relative to the root),
    named after its folder in a metasync.yaml unless the files bring their own."""
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    if "metasync.yaml" not in files:
        (root / "metasync.yaml").write_text(f"name: {root.name}\n")
    env_dir = root / "environments" / "dev"
    env_dir.mkdir(parents=True, exist_ok=True)
    (env_dir / "environment.yaml").write_text(environment)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))
    return root


def run_cli(*args: str) -> Result:
    """Run metasync in-process, through its error boundary."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


ROOT = Path(__file__).resolve().parent.parent


def prefixed_example(target: Path, prefix: str, server_url: str) -> Path:
    """The example project, every resource renamed with ``prefix`` and dev pointed at ``server_url``.

    Tests share one server; the prefix keeps each test's objects apart, and names the project (so
    prune and the apply lock see only this test's objects). References (task names,
    sub-workflows, failure workflows, event names) are renamed with the names they point to.
    """
    for part in ("manifests", "environments"):
        shutil.copytree(ROOT / part, target / part)
    # its own project name: its own ownership mark and apply lock on the shared server
    (target / "metasync.yaml").write_text(f"name: {prefix}order-to-cash\n")
    names = set()
    for path in (target / "manifests").rglob("*.yaml"):
        names.update(re.findall(r"^metadata:\s*\n\s+name:\s*(\S+)", path.read_text(), re.M))
        names.update(re.findall(r"^metadata:\s*\{name:\s*([^,}\s]+)", path.read_text(), re.M))
    pattern = re.compile(
        r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b"
    )
    for path in [
        *(target / "manifests").rglob("*.yaml"),
        *(target / "environments").rglob("overlays/*.yaml"),
    ]:
        path.write_text(pattern.sub(lambda m: prefix + m.group(1), path.read_text()))
    for env in ("dev", "qa", "prod"):
        env_file = target / "environments" / env / "environment.yaml"
        text = re.sub(r"url: http://127\.0\.0\.1:\d+", f"url: {server_url}", env_file.read_text())
        # the pins name commits of this repository, which a copy does not have: qa and prod
        # become environments of their own (committed_example pins them to its own commit)
        text = re.sub(r"(?m)^  from: \w+\n  ref: \w+.*$", "  from: null\n  ref: null", text)
        env_file.write_text(text)
    return target


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its output, stripped."""
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def committed_example(root: Path, prefix: str, server_url: str) -> Path:
    """``prefixed_example`` in a new git repository (branch main), committed."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    prefixed_example(root, prefix, server_url)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the example")
    pin_stages(root)
    return root


def pin_stages(root: Path, commit: str | None = None) -> None:
    """dev -> qa -> prod, as in this repository's example: qa and prod pinned to ``commit``
    (default HEAD), committed."""
    commit = commit or git(root, "rev-parse", "HEAD")
    for env, source in (("qa", "dev"), ("prod", "qa")):
        env_file = root / "environments" / env / "environment.yaml"
        text = re.sub(r"(?m)^  from: null\n  ref: null$", f"  from: {source}\n  ref: {commit}",
                      env_file.read_text())  # fmt: skip
        env_file.write_text(text)
    git(root, "commit", "-q", "-am", f"qa and prod run {commit[:7]}")


def secret_project(root: Path, prefix: str, url: str, variable: str) -> Path:
    """One workflow whose HTTP task sends the secret api_token, read from ``variable``."""
    environment = (
        f"server:\n  url: {url}\nvars:\n  owner_email: team@example.com\n"
        f"secrets:\n  api_token: {variable}\n"
    )
    manifest = f"""\
        apiVersion: metasync/v1
        kind: WorkflowDef
        metadata: {{name: {prefix}billing}}
        spec:
          version: 1
          ownerEmail: ((vars.owner_email))
          tasks:
            - name: post_invoice
              taskReferenceName: post_invoice
              type: HTTP
              inputParameters:
                http_request:
                  uri: https://ledger.example.internal/v1/invoices
                  method: POST
                  headers:
                    Authorization: "Bearer ((secrets.api_token))"
                    X-Api-Key: ((secrets.api_token))
        """
    return write_project(root, {"manifests/billing.yaml": manifest}, environment=environment)


def secret_holder(root: Path, prefix: str, variable: str) -> str:
    """A task definition in the project at ``root`` whose inputTemplate holds ``((secrets.token))``,
    dev's ``token`` read from the process environment's ``variable``; its name."""
    holder = f"{prefix}secret_holder"
    (root / "manifests" / "secret_holder.yaml").write_text(
        "apiVersion: metasync/v1\nkind: TaskDef\n"
        f"metadata: {{name: {holder}}}\n"
        "spec: {ownerEmail: ((vars.owner_email)), inputTemplate: {token: ((secrets.token))}}\n"
    )
    env = root / "environments" / "dev" / "environment.yaml"
    env.write_text(env.read_text() + f"secrets: {{token: {variable}}}\n")
    return holder
