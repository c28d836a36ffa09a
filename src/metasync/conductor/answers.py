"""Reading a Conductor server's answers: JSON bodies, its own messages, its status as 3.15 would
give it, and a refusal as a ServerError that says what to do."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from metasync.bulk import no_cycles
from metasync.errors import Problem, ServerError, redact_url


def json_of(response: httpx.Response) -> Any:
    if not response.content:
        return {}
    try:
        with no_cycles():  # a list of thousands of definitions
            return json.loads(response.content)
    except ValueError:
        raise not_json(response) from None


def not_json(response: httpx.Response) -> ServerError:
    return ServerError(
        f"{response.request.method} {response.request.url.path}: the answer is not JSON "
        f"({response.headers.get('content-type', 'no content type')})",
        hint="Is server.url the Conductor server's base URL (without /api)?",
    )


def body_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def message_of(response: httpx.Response) -> str:
    """The server's own message in an error answer."""
    body = body_of(response)
    return str(body.get("message") or response.text.strip()[:300] or response.reason_phrase)


#: conductor-oss answers 500 where 3.15 says 409 or 404 (docs/servers.md): told by the message
_CONFLICT = re.compile(r"already exists", re.I)
_MISSING = re.compile(r"\b(not found|no such)\b", re.I)


def status_of(response: httpx.Response) -> int:
    """The status as 3.15 would give it: a conductor-oss 500 that says "already exists" is a 409,
    one that says "not found" or "no such" a 404."""
    status = response.status_code
    if status == 500:
        message = message_of(response)
        if _CONFLICT.search(message):
            return 409
        if _MISSING.search(message):
            return 404
    return status


def refusal(request: str, response: httpx.Response) -> ServerError:
    status = status_of(response)
    if response.is_redirect or 300 <= status < 400:  # never followed: nothing was carried out
        location = redact_url(response.headers.get("Location", "nowhere"))
        return ServerError(
            f"{request} -> {status}: the server redirects to {location}; metasync does not follow "
            "redirects (nothing was written)",
            status=status,
            hint="Set server.url to the Conductor server itself (often the redirect's target, "
            "without /api).",
        )
    body = body_of(response)
    message = message_of(response)
    details = [
        Problem(f"{_short_path(v.get('path', ''))}: {v.get('message', '')}")
        for v in body.get("validationErrors") or ()
        if isinstance(v, dict)
    ]
    hint = {
        400: "Fix the definition as the server says; `metasync validate` catches most of these offline.",
        401: "Check the key id and secret in server.auth.",
        403: "The credentials lack permission for this request.",
        404: "The object is not on the server (deleted meanwhile?): plan again.",
        409: "The object was created meanwhile by someone else: plan again.",
    }.get(status)
    if status >= 500:
        hint = (
            "A 500 on a metadata write usually means the server could not read the payload "
            "(an enum value or type it does not know); otherwise check the server's log."
        )
    return ServerError(
        f"{request} -> {response.status_code}: {message}", status=status, details=details, hint=hint
    )


def _short_path(path: str) -> str:
    """``updateWorkflowDef.workflowDefList[0].tasks[1]`` -> ``workflowDefList[0].tasks[1]``."""
    return path.split(".", 1)[1] if "." in path else path
