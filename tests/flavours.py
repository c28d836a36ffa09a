"""Which server flavours the tests run against (imported by conftest: it imports no metasync
module, so a machine without git or Java still gets as far as the fixtures that say so)."""

from __future__ import annotations

import os

import pytest

import conductor_server

#: the server flavours every server-facing test runs against: Conductor 3.15.0 and conductor-oss
#: 3.32.3 (METASYNC_TEST_FLAVOURS=3.15 narrows a local run; CI runs both)
FLAVOURS = [
    f.strip()
    for f in os.environ.get("METASYNC_TEST_FLAVOURS", ",".join(conductor_server.FLAVOURS)).split(
        ","
    )
    if f.strip()
]


def on(*flavours: str) -> pytest.MarkDecorator:
    """A test of what only some flavours do (schedules: conductor-oss), run on those alone."""
    return pytest.mark.parametrize("flavour", [f for f in FLAVOURS if f in flavours], indirect=True)
