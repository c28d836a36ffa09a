"""The one place that decides whether output is coloured.

Colour (any escape code: colours, bold, dim) is off when the caller says so (``color=False``),
when ``NO_COLOR`` is set to anything non-empty (https://no-color.org), or when the command line
asked for ``--no-color`` (:func:`disable_color`, for the rest of the run). Otherwise rich decides as
it always does: a terminal gets colour, a pipe or file does not, and ``FORCE_COLOR`` /
``TTY_COMPATIBLE`` force it.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import IO, Any

from rich.console import Console

_DISABLED: ContextVar[bool] = ContextVar("metasync_no_color", default=False)


def disable_color() -> None:
    """``--no-color``: no escape code for the rest of this run (this context)."""
    _DISABLED.set(True)


def color_disabled() -> bool:
    return _DISABLED.get() or bool(os.environ.get("NO_COLOR"))


def make_console(stream: IO[str], color: bool | None = None, **options: Any) -> Console:
    """A console on ``stream``: ``color`` True forces colour, False or :func:`color_disabled` turns
    every escape code off, None lets rich decide (terminal or not, ``FORCE_COLOR``)."""
    if color is False or (color is None and color_disabled()):
        # color_system=None: no style is rendered at all (NO_COLOR alone keeps bold and dim)
        return Console(file=stream, color_system=None, no_color=True, force_terminal=False,
                       highlight=False, soft_wrap=True, **options)  # fmt: skip
    return Console(file=stream, force_terminal=color, highlight=False, soft_wrap=True, **options)
