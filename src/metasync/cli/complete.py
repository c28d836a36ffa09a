"""Shell completion of the project's own names (click's ``_METASYNC_COMPLETE`` protocol)."""

from __future__ import annotations

from pathlib import Path

import click
from click.shell_completion import CompletionItem

from metasync.errors import MetasyncError
from metasync.manifests.environment import environment_names
from metasync.project import find_project


def environments(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The environments of the project the command line names (``--project``) or is run in;
    nothing when there is none (completion never fails)."""
    given = ctx.find_root().params.get("project_dir")
    try:
        root = Path(given) if given else find_project(Path.cwd())
        names = environment_names(root)
    except (MetasyncError, OSError):
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]
