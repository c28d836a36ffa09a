"""What a notification says: a Slack-compatible ``text`` and the same facts as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from metasync.plan.drift import EnvironmentDrift
from metasync.plan.model import Outcome
from metasync.render.apply_result import outcome_json
from metasync.render.drift import summary

#: objects named in the text, at most (the JSON part lists them all)
SHOWN = 20


def drift_message(reports: Sequence[EnvironmentDrift]) -> dict[str, Any]:
    drifted = any(r.drift for r in reports)
    failed = any(r.error for r in reports)
    head = "metasync drift: " + (
        "could not check every environment" if failed else "drift found" if drifted else "in sync"
    )
    lines = [head]
    for report in reports:
        lines.append(f"• {report.environment} ({report.server}): {summary(report)}")
        for item in report.drift[:SHOWN]:
            lines.append(f"    {item.type}: {item.title}")
        if len(report.drift) > SHOWN:
            lines.append(f"    ... and {len(report.drift) - SHOWN} more")
    return {
        "text": "\n".join(lines),
        "metasync": {
            "kind": "drift",
            "formatVersion": 1,
            "environments": [
                {
                    "environment": r.environment,
                    "server": r.server,
                    "inSync": not r.drift and r.error is None,
                    "error": r.error.message if r.error else None,
                    "counts": r.counts(),
                    "drift": [
                        {"kind": d.kind, "name": d.name, "version": d.version, "type": d.type}
                        for d in r.drift
                    ],
                }
                for r in reports
            ],
        },
    }


def apply_message(environment: str, server: str, outcomes: Sequence[Outcome],
                  command: str = "apply") -> dict[str, Any]:  # fmt: skip
    landed = sum(o.status == "landed" for o in outcomes)
    rest = [o for o in outcomes if o.status != "landed"]
    head = f"metasync {command} on {environment} ({server}): {landed} of {len(outcomes)} landed"
    lines = [head + (f", {len(rest)} did not" if rest else "")]
    for outcome in rest[:SHOWN]:
        reason = outcome.problems[0].message if outcome.problems else ""
        lines.append(
            f"• {outcome.status}: {outcome.change.title}" + (f": {reason}" if reason else "")
        )
    return {
        "text": "\n".join(lines),
        "metasync": {
            "kind": command,
            "formatVersion": 1,
            "environment": environment,
            "server": server,
            "ok": not rest,
            "outcomes": [outcome_json(o) for o in outcomes],
        },
    }
