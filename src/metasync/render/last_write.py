"""Who last wrote a live object, and when, as the server recorded it: for drift reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from metasync.plan.drift import LastWrite


def last_write_json(written: LastWrite | None) -> dict[str, Any] | None:
    """``{"time": ISO UTC | null, "action", "by", "ownerApp", "note"}``; None: no live object."""
    if written is None:
        return None
    return {
        "time": _iso(written.time) if written.time else None,
        "action": written.action,
        "by": written.by,
        "ownerApp": written.owner_app,
        "note": written.note or None,
    }


def last_write_line(
    written: LastWrite, now: datetime | None = None, *, relative: bool = True
) -> str:
    """``updated 2026-12-01 22:58:12 UTC (4 minutes ago) by alice, ownerApp ui``, or why the
    server tells nothing."""
    if not written.recorded:
        return written.note
    if written.time is not None:
        line = f"{written.action} {written.time.strftime('%Y-%m-%d %H:%M:%S UTC')}"
        if relative:
            line += f" ({ago(written.time, now or datetime.now(UTC))})"
    else:
        line = "no time recorded"
    line += f" by {written.by}" if written.by else ", no user recorded"
    if written.owner_app:
        # metasync's own mark carries the fingerprint of what it wrote: not for reading
        line += f", ownerApp {written.owner_app.partition('@sha256:')[0]}"
    return line


def ago(then: datetime, now: datetime) -> str:
    """``just now``, ``5 minutes ago``, ``3 hours ago``, ``2 days ago`` (``in the future``)."""
    seconds = (now - then).total_seconds()
    if seconds < -60:
        return "in the future: check the server's clock"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
