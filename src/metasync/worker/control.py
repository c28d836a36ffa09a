"""`metasync control install`: metasync's own definitions on a control-plane Conductor.

They are metasync manifests (``worker/definitions/*.yaml``: the task types ``metasync worker``
polls, and ``metasync_reconcile``, which fans out over a project's environments), applied by
metasync itself: a project made for the run, its one environment ``control`` the control plane.
What it writes carries the project's mark (``ownerApp: metasync/metasync-control@...``); an
apply plans against what is there, so running it again changes nothing, and it deletes nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from metasync.project import Project

#: the project's name: the mark on what it writes, and its apply lock on the control plane
NAME = "metasync-control"
ENVIRONMENT = "control"


@contextmanager
def control_project(url: str, *, owner_email: str, response_timeout: int) -> Iterator[Project]:
    """The control-plane project for the server at ``url``, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="metasync-control-") as tmp:
        root = Path(tmp)
        (root / "metasync.yaml").write_text(f"name: {NAME}\n")
        env = root / "environments" / ENVIRONMENT
        env.mkdir(parents=True)
        config = {
            "server": {"url": url},
            "vars": {"owner_email": owner_email, "response_timeout_seconds": response_timeout},
            "promotion": {"from": None, "ref": None},
            "policy": {"versioning": "in-place", "prune": False},
        }
        (env / "environment.yaml").write_text(json.dumps(config, indent=2) + "\n")  # YAML too
        manifests = root / "manifests"
        manifests.mkdir()
        for source in resources.files("metasync.worker").joinpath("definitions").iterdir():
            if source.name.endswith(".yaml"):
                (manifests / source.name).write_text(source.read_text())
        yield Project(root, cache=False)
