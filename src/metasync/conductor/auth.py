"""Orkes key/secret authentication: the pair exchanged for a token, refreshed when it expires."""

from __future__ import annotations

import time
from collections.abc import Generator

import httpx

from metasync.errors import ServerError

TOKEN_TTL_S = 45 * 60  # the Orkes SDKs refresh proactively after 45 minutes


class OrkesAuth(httpx.Auth):
    """Orkes key/secret exchanged for a token (``X-Authorization``), refreshed when it expires."""

    requires_response_body = True

    def __init__(self, token_url: str, key_id: str, key_secret: str):
        self._token_url = token_url
        self._credentials = {"keyId": key_id, "keySecret": key_secret}
        self._token: str | None = None
        self._fetched_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None or time.monotonic() - self._fetched_at > TOKEN_TTL_S:
            yield from self._refresh()
        request.headers["X-Authorization"] = self._token or ""
        response = yield request
        if response.status_code in (401, 403) and "EXPIRED_TOKEN" in response.text:
            yield from self._refresh()
            request.headers["X-Authorization"] = self._token or ""
            yield request

    def _refresh(self) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield httpx.Request("POST", self._token_url, json=self._credentials)
        if response.status_code != 200:
            raise ServerError(
                f"POST {httpx.URL(self._token_url).path} -> {response.status_code}: the server "
                "refused the key id and secret",
                status=response.status_code,
                hint="Check the key id and secret variables named in the environment's server.auth.",
            )
        self._token = str(response.json().get("token", ""))
        self._fetched_at = time.monotonic()
