"""Webhook notifications: a JSON summary POSTed to each URL, Slack-compatible.

A notification is a side effect of a job, never its outcome: every failure (after bounded retries
with a timeout) comes back as a warning for the job to print, and the job's exit code stays what
its work decided. A webhook URL often is a credential (Slack's are), so messages show only its
scheme and host.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from metasync.errors import Problem

ATTEMPTS = 3
TIMEOUT_S = 10.0
BACKOFF_S = 0.5
_RETRY = frozenset({429, 500, 502, 503, 504})


def redact(url: str) -> str:
    """``https://hooks.slack.com/...``: enough to tell which hook, nothing that grants access."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/..." if parts.scheme else "(a webhook)"


def send(urls: Sequence[str], payload: Mapping[str, Any], *, timeout: float = TIMEOUT_S,
         attempts: int = ATTEMPTS, sleep: Callable[[float], None] = time.sleep,
         transport: httpx.BaseTransport | None = None) -> list[Problem]:  # fmt: skip
    """POST ``payload`` to every URL; the warnings for those that did not take it."""
    failures: list[Problem] = []
    with httpx.Client(timeout=timeout, transport=transport) as http:
        for url in dict.fromkeys(urls):
            why = _post(http, url, payload, attempts, sleep)
            if why is not None:
                failures.append(Problem(
                    f"the notification to {redact(url)} was not delivered: {why}",
                    hint="The job's result stands; check the webhook URL and that it is reachable.",
                    severity="warning",
                    rule="notification-failed",
                ))  # fmt: skip
    return failures


def _post(http: httpx.Client, url: str, payload: Mapping[str, Any], attempts: int,
          sleep: Callable[[float], None]) -> str | None:  # fmt: skip
    why = "not tried"
    for attempt in range(1, attempts + 1):
        try:
            response = http.post(url, json=payload)
        except httpx.InvalidURL:
            return "the URL is not valid"
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__} after {attempt} attempt(s)"
        else:
            if response.status_code < 300:
                return None
            why = f"it answered {response.status_code} after {attempt} attempt(s)"
            if response.status_code not in _RETRY:
                return why
        if attempt < attempts:
            sleep(BACKOFF_S * 2 ** (attempt - 1))
    return why
