"""Small builders for projects on disk."""

from __future__ import annotations

import textwrap
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
    root: Path, files: dict[str, str | bytes], environment: str = ENVIRONMENT
) -> Path:
    """A project with one environment `dev` and the given files (paths relative to the root)."""
    (root / "manifests").mkdir(parents=True, exist_ok=True)
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
