"""The test suite's own guards fail loudly."""

from __future__ import annotations

import socket

import pytest


def test_connections_beyond_loopback_are_refused_before_any_packet() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(AssertionError, match="only loopback is allowed"),
    ):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed, and never tried here


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
