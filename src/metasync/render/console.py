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

from rich.console import COLOR_SYSTEMS, Console
from rich.control import strip_control_codes
from rich.style import Style

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


#: a piece of a line: plain text, or (text, rich style)
Part = str | tuple[str, str]


class Lines:
    """Writes many short lines fast, coloured exactly when ``console`` would colour them.

    rich's ``Console.print`` costs about a tenth of a millisecond a line: a plan creating 2,000
    workflows is 340,000 lines, 40 s of printing. Here each style is parsed once and rendered with
    rich's own ``Style.render`` for the console's colour system (none: plain text). Control codes
    are stripped as rich's ``Text`` strips them: a value from a server never moves the cursor."""

    def __init__(self, console: Console):
        self._file = console.file
        system = console.color_system
        self._system = COLOR_SYSTEMS[system] if system else None
        self._styles: dict[str, Style] = {}

    def styled(self, text: str, style: str) -> str:
        if self._system is None or not style or not text:
            return text
        parsed = self._styles.get(style)
        if parsed is None:
            parsed = self._styles[style] = Style.parse(style)
        return "\n".join(
            parsed.render(line, color_system=self._system) for line in text.split("\n")
        )

    def line(self, *parts: Part) -> None:
        self._file.write(
            "".join(
                strip_control_codes(p) if isinstance(p, str)
                else self.styled(strip_control_codes(p[0]), p[1])
                for p in parts
            ) + "\n"
        )  # fmt: skip
