"""Problems (errors and warnings) for the terminal, coloured when it is one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from rich.text import Text

from metasync.errors import Problem
from metasync.render.console import make_console

_STYLE = {"error": "bold red", "warning": "yellow"}


def write_problems(stream: IO[str], problems: Iterable[Problem]) -> None:
    console = make_console(stream)
    for problem in problems:
        text = Text.assemble((f"{problem.severity}:", _STYLE[problem.severity]), " ")
        if problem.location is not None:
            text.append(f"{problem.location}: ", style="bold")
        text.append(problem.message)
        if problem.location is not None and problem.location.snippet:
            text.append(f"\n{problem.location.snippet}")
        if problem.hint:
            text.append(f"\n  {problem.hint}", style="dim")
        console.print(text)
