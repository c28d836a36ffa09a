"""The one place that maps outcomes to exit codes (docs/cli.md).

``MetasyncError`` -> 1 with its message; Ctrl-C -> 130; anything else is a bug -> 3, with a crash log
whose path is printed. No traceback reaches the terminal.
"""

from __future__ import annotations

import contextvars
import datetime
import importlib
import os
import platform
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from metasync import __version__
from metasync import operations as op
from metasync.cli.interrupted import write_interrupted
from metasync.cli.strict import StrictCommand, check_repeated, no_color_option
from metasync.errors import MetasyncError, Problem
from metasync.lazy import lazy_module
from metasync.manifests.secrets import scrub
from metasync.render.problems import WarningsMode, write_problems, write_warnings

if TYPE_CHECKING:
    import platformdirs
else:  # for crash logs only (metasync/lazy.py)
    platformdirs = lazy_module("platformdirs")

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_CHANGES = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


class Output:
    """How this run shows warnings (``--warnings``, global or per command); the boundary needs it
    too, for the warnings that come with errors."""

    warnings: WarningsMode = "summary"


OUTPUT = Output()


def write_found(problems: Sequence[Problem]) -> None:
    """Errors in full, after the warnings as ``--warnings`` says."""
    write_warnings(sys.stderr, [p for p in problems if p.severity == "warning"], OUTPUT.warnings)
    write_problems(sys.stderr, [p for p in problems if p.severity != "warning"])


def crash_dir() -> Path:
    """``$METASYNC_CRASH_DIR``, or ``crash`` in the user's cache folder for metasync
    (``$XDG_CACHE_HOME/metasync`` or ``~/.cache/metasync`` on Linux, the platform's elsewhere)."""
    explicit = os.environ.get("METASYNC_CRASH_DIR")
    if explicit:
        return Path(explicit)
    return platformdirs.user_cache_path("metasync", appauthor=False) / "crash"


def write_crash_log(exc: BaseException, argv: Sequence[str]) -> Path:
    folder = crash_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"metasync-{stamp}-{os.getpid()}.log"
    lines = [
        f"metasync {__version__} crashed at {stamp}",
        f"python {platform.python_version()} on {platform.platform()}",
        f"arguments: {list(argv)}",
        "",
        *traceback.format_exception(exc),
    ]
    path.write_text(scrub("\n".join(lines)))  # a secret in a message or argument stays hidden
    return path


class BoundaryGroup(click.Group):
    """A click group whose ``main`` applies the error boundary (also under CliRunner); its
    commands are strict (cli/strict.py), and it takes ``--no-color``.

    ``lazy_commands`` names, per command, the module that defines it (registering it on this
    group): imported when the command is asked for (run, its help, completion), so a run loads
    the modules of its own command only."""

    command_class = StrictCommand

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(no_color_option())
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            importlib.import_module(self.lazy_commands[cmd_name])
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        check_repeated(self, ctx, args)
        return super().parse_args(ctx, args)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        code = self.run(argv, prog_name, complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def run(
        self, argv: list[str], prog_name: str | None, complete_var: str | None, **extra: Any
    ) -> int:
        # a context of its own: --no-color lasts for this run only (CliRunner runs many)
        return contextvars.copy_context().run(self._run, argv, prog_name, complete_var, **extra)

    def _run(
        self, argv: list[str], prog_name: str | None, complete_var: str | None, **extra: Any
    ) -> int:
        OUTPUT.warnings = "summary"
        try:
            result = super().main(
                argv, prog_name or "metasync", complete_var, standalone_mode=False, **extra
            )
        except MetasyncError as exc:
            write_found(exc.problems)
            return EXIT_USER_ERROR
        except click.exceptions.Exit as exc:  # --help, --version
            return int(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("interrupted", err=True)
            return EXIT_INTERRUPTED
        except click.ClickException as exc:  # usage errors are user errors: 1, never 2
            exc.show()
            return EXIT_USER_ERROR
        # Ctrl-C while writing: what landed, what next (the class is looked up only when
        # something was raised: a run that never applies never loads operations/apply.py)
        except op.apply.ApplyInterrupted as stop:
            write_interrupted(stop)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            return EXIT_INTERRUPTED
        except Exception as exc:
            try:
                where = f"crash log: {write_crash_log(exc, argv)}"
            except OSError as log_exc:
                where = f"(could not write a crash log: {log_exc})"
            click.echo(
                f"error: metasync hit a bug ({type(exc).__name__}); this is not your input's fault.\n"
                f"  {where}\n  Please report it with the crash log.",
                err=True,
            )
            return EXIT_BUG
        return int(result or EXIT_OK)
