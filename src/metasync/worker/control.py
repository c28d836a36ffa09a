"""`metasync control install`: metasync's own definitions on a control-plane Conductor.

They are metasync manifests (``worker/definitions/*.yaml``: the task types ``metasync worker``
polls, and ``metasync_reconcile``, which fans out over a project's environments), applied by
metasync itself: a project made for the run, its one environment ``control`` the control plane.
What it writes carries the project's mark (``ownerApp: metasync/metasync-control@...``); an
apply plans against what is there, so running it again changes nothing, and it deletes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from metasync.errors import redact_url
from metasync.project import Project

#: the project's name: the mark on what it writes, and its apply lock on the control plane
NAME = "metasync-control"
ENVIRONMENT = "control"
WORKFLOW = "metasync_reconcile"
#: the correlation id of the reconciles metasync starts (schedules, `control start`): how
#: `metasync status --control` finds the latest one on a server that keeps no search index
CORRELATION = "metasync_reconcile"


@dataclass(frozen=True)
class Schedule:
    """A reconcile on a cron: of ``ref`` (a branch or tag, resolved at each run) of a
    repository's project in ``path``."""

    cron: str
    repository: str
    ref: str
    path: str = "."
    environments: tuple[str, ...] = ()
    apply: bool = False
    name: str | None = None
    domain: str | None = None

    @property
    def schedule_name(self) -> str:
        if self.name:
            return self.name
        digest = hashlib.sha256(f"{self.repository}\n{self.ref}\n{self.path}".encode()).hexdigest()
        stem = re.sub(r"[^A-Za-z0-9]+", "_", self.repository.rstrip("/").rsplit("/", 1)[-1])
        return f"{WORKFLOW}_{stem.removesuffix('_git').strip('_')[:40]}_{digest[:8]}"

    def start_request(self) -> dict[str, Any]:
        return start_request(self.repository, ref=self.ref, path=self.path,
                             environments=self.environments, apply=self.apply,
                             domain=self.domain)  # fmt: skip


def start_request(repository: str, *, commit: str | None = None, ref: str | None = None,
                  path: str = ".", environments: tuple[str, ...] = (),
                  apply: bool = False, domain: str | None = None) -> dict[str, Any]:  # fmt: skip
    """How a reconcile is started (POST /api/workflow, and a schedule's startWorkflowRequest);
    ``domain``: its tasks go to the workers polling that domain (``worker --domain``)."""
    given: dict[str, Any] = {"repository": repository, "path": path, "apply": apply}
    given.update({"commit": commit} if commit else {"ref": ref})
    if environments:
        given["environments"] = list(environments)
    request = {"name": WORKFLOW, "version": 1, "correlationId": CORRELATION, "input": given}
    if domain:
        request["taskToDomain"] = {"*": domain}
    return request


@contextmanager
def control_project(url: str, *, owner_email: str, response_timeout: int,
                    parallelism: int | None = None,
                    schedule: Schedule | None = None) -> Iterator[Project]:  # fmt: skip
    """The control-plane project for the server at ``url``, in a temporary folder: with
    ``parallelism``, at most that many tasks of each type that reads or writes a target run at
    once; with ``schedule``, a WorkflowSchedule of the reconcile (conductor-oss, Orkes)."""
    with tempfile.TemporaryDirectory(prefix="metasync-control-") as tmp:
        root = Path(tmp)
        (root / "metasync.yaml").write_text(f"name: {NAME}\n")
        env = root / "environments" / ENVIRONMENT
        env.mkdir(parents=True)
        config = {
            "server": {"url": url},
            "vars": {
                "owner_email": owner_email,
                "response_timeout_seconds": response_timeout,
                # 0: no limit (written, so that a limit an earlier install set is lifted)
                "parallelism": parallelism or 0,
            },
            "promotion": {"from": None, "ref": None},
            "policy": {"versioning": "in-place", "prune": False},
        }
        (env / "environment.yaml").write_text(json.dumps(config, indent=2) + "\n")  # YAML too
        manifests = root / "manifests"
        manifests.mkdir()
        for source in resources.files("metasync.worker").joinpath("definitions").iterdir():
            if source.name.endswith(".yaml"):
                (manifests / source.name).write_text(source.read_text())
        if schedule is not None:
            (manifests / "schedule.yaml").write_text(json.dumps(_schedule(schedule), indent=2))
        yield Project(root, cache=False)


def _schedule(schedule: Schedule) -> Mapping[str, Any]:
    return {
        "apiVersion": "metasync/v1",
        "kind": "WorkflowSchedule",
        "metadata": {"name": schedule.schedule_name},
        "spec": {
            "cronExpression": schedule.cron,
            "description": f"metasync reconcile of {redact_url(schedule.repository)} at "
            f"{schedule.ref}",
            "startWorkflowRequest": schedule.start_request(),
        },
    }
