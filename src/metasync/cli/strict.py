"""Click commands that refuse what click lets pass silently, and the options every command takes.

* A single-value option given twice with different values (``--env dev --env prod``) is an error
  naming both values: click keeps the last one and would quietly act on it alone.
* ``--no-color`` and ``--project DIR`` are accepted after the command as well as before it
  (``metasync validate --project sub``: pre-commit appends a hook's args after its entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from metasync.render.console import disable_color


def _no_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        disable_color()


def no_color_option() -> click.Option:
    return click.Option(
        ["--no-color"],
        is_flag=True,
        expose_value=False,
        callback=_no_color,
        help="No colour or other escape codes (as NO_COLOR=1 does).",
    )


def _project_after(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is None:
        return
    root = ctx.find_root()
    before = root.params.get("project_dir")
    source = root.get_parameter_source("project_dir")
    if source is click.core.ParameterSource.COMMANDLINE and before is not None and before != value:
        raise click.UsageError(
            f"--project is given 2 times ({before}, {value}), before and after the command. "
            "Give --project once.",
            ctx,
        )
    root.obj = value  # the group's --project, given after the command


def _shared_options() -> list[click.Option]:
    return [
        click.Option(
            ["--project"],
            type=click.Path(file_okay=False, path_type=Path),
            expose_value=False,
            callback=_project_after,
            metavar="DIR",
            help="The metasync project (as `metasync --project DIR COMMAND`).",
        ),
        no_color_option(),
    ]


def check_repeated(command: click.Command, ctx: click.Context, args: Sequence[str]) -> None:
    """Refuse a single-value option given several times with different values."""
    if ctx.resilient_parsing:
        return
    parser = command.make_parser(ctx)
    singles: dict[str, click.Option] = {}
    for parsed in {*parser._long_opt.values(), *parser._short_opt.values()}:
        if parsed.action == "store" and isinstance(parsed.obj, click.Option):
            parsed.action = "append"  # this throwaway parser keeps every value
            singles[parsed.dest or ""] = parsed.obj
    values, _, _ = parser.parse_args(args=list(args))
    for dest, option in singles.items():
        given = [str(v) for v in values.get(dest) or ()]
        if len(set(given)) > 1:
            raise click.UsageError(_repeated_message(ctx, option, given), ctx)


def _repeated_message(ctx: click.Context, option: click.Option, given: list[str]) -> str:
    name = max(option.opts, key=len)
    command = f"metasync {ctx.info_name}" if ctx.parent is not None else "metasync"
    message = (
        f"{name} is given {len(given)} times ({', '.join(given)}), and `{command}` takes one "
        "(it would silently use the last)."
    )
    parent = ctx.parent
    group = parent.command if parent is not None else None
    commands = (  # every command, those of modules not loaded yet too (cli/boundary.py)
        {n: group.get_command(parent, n) for n in group.list_commands(parent)}
        if parent is not None and isinstance(group, click.Group)
        else {}
    )
    several = sorted(
        cmd_name
        for cmd_name, cmd in commands.items()
        if cmd is not None
        and any(isinstance(p, click.Option) and p.multiple and name in p.opts for p in cmd.params)
    )
    if several:
        message += f" Give {name} once (these commands take several: {', '.join(several)})."
    else:
        message += f" Give {name} once."
    return message


class StrictCommand(click.Command):
    """A command that refuses repeated single-value options and takes the shared options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(_shared_options())

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        check_repeated(self, ctx, args)
        return super().parse_args(ctx, args)
