"""``plan -o json`` (docs/json.md, formatVersion 1)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any

from metasync.errors import Problem
from metasync.plan.model import Plan
from metasync.render.ignored import ignored_json
from metasync.render.problems import by_place, problem_document

FORMAT_VERSION = 1


def plan_document(plan: Plan) -> dict[str, Any]:
    return {
        "formatVersion": FORMAT_VERSION,
        "environment": plan.environment,
        "server": plan.server,
        "flavour": plan.flavour,
        "project": {"name": plan.project[0], "from": plan.project[1]} if plan.project else None,
        "changes": [
            {
                "kind": c.kind,
                "name": c.name,
                "version": c.version,
                "action": c.action,
                "fields": [
                    {"path": f.path, "before": f.before, "after": f.after} for f in c.fields
                ],
                "liveFingerprint": c.live_fingerprint,
                "desiredFingerprint": c.desired_fingerprint,
                "reason": c.reason,
                "blocked": c.blocked,
                "previousVersion": c.previous_version,
                "note": c.note or None,
            }
            for c in plan.changes
        ],
        "unmanaged": [
            {"kind": u.kind, "name": u.name, "version": u.version, "managedByMetasync": u.owned}
            for u in plan.unmanaged
        ],
        "refusals": [p.message for p in plan.refusals],
        "ignored": ignored_json(plan.ignored),
        "summary": plan.summary(),
    }


def write_plan_json(stream: IO[str], plan: Plan, warnings: Sequence[Problem] | None = None,
                    suppressed: int = 0) -> None:  # fmt: skip
    """The plan; with ``warnings``, every one of them too (by file and line), and how many
    warnings.ignore silenced."""
    document = plan_document(plan)
    if warnings is not None:
        document["warnings"] = [problem_document(p) for p in by_place(dict.fromkeys(warnings))]
        document["suppressedWarnings"] = suppressed
    json.dump(document, stream, indent=2, ensure_ascii=False)
    stream.write("\n")
