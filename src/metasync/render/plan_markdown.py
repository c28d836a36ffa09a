"""``plan -o markdown``: a pull-request comment, one collapsible section per resource, size-capped."""

from __future__ import annotations

import re

from metasync.model.flavour import FLAVOUR_NAMES
from metasync.plan.model import Change, Plan
from metasync.render.ignored import ignored_line
from metasync.render.plan_text import (
    WIDTH,
    detail,
    field_lines,
    remarks,
    shown_fields,
    unmanaged_names,
)
from metasync.render.values import summary_line

#: GitHub refuses comments over 65,536 characters; keep room for a sticky-comment header
DEFAULT_LIMIT = 60_000
_MARK = {"create": "+", "update": "~", "delete": "-"}
#: resources named in the footer when the size limit leaves some out
_NAMED = 10


def _section(change: Change) -> str:
    body = [
        f"{'!' if mark == '~' else mark} {text}"
        for field in shown_fields(change)
        for mark, _, text in field_lines(field, WIDTH - 2)
    ]
    fence = _fence(body)
    lines = [
        f"<details><summary><code>{_MARK[change.action]} {change.title}</code> "
        f"({detail(change)})</summary>",
        "",
        *(line for _, text in remarks(change) for line in (f"> {text}", "")),
        fence + "diff",
        *body,
        fence,
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


def _fence(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in ``lines`` (a value may hold some)."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _unmanaged(plan: Plan, room: int) -> str:
    """The objects left alone, counted, their names in a collapsible list, within ``room``
    characters (as many names as fit, then how many more; at the least the count)."""
    count = len(plan.unmanaged)
    short = f"\n<sub>{count} object(s) on the server are not in git and are left alone.</sub>\n"
    out = (
        f"\n<details><summary>{count} object(s) on the server are not in git and are left alone"
        "</summary>\n\n"
    )
    tail = "\n</details>\n"
    left = count
    for kind, names in unmanaged_names(plan).items():
        line = f"- {kind} ({len(names)}):"
        for index, name in enumerate(names):
            more = f"- ... and {left - index} more: `metasync plan` lists them all\n"
            if len(out) + len(line) + len(name) + 5 + len(more) + len(tail) > room:
                if index:
                    out += line + ", ...\n"
                return out + more + tail if len(out) + len(more) + len(tail) <= room else short
            line += f"{',' if index else ''} `{name}`"
        out += line + "\n"
        left -= len(names)
    return out + tail if len(out) + len(tail) <= room else short


def _footer(rest: tuple[Change, ...], hint: str) -> str:
    """What the size limit left out: how many, and the first of their names."""
    names = ", ".join(f"`{_MARK[c.action]} {c.title}`" for c in rest[:_NAMED])
    more = f" and {len(rest) - _NAMED} more" if len(rest) > _NAMED else ""
    return (
        f"\n**{len(rest)} more resource(s) not shown** (comment size limit): {names}{more}. "
        f"{hint or 'The full plan is in the job log (`metasync plan`).'}\n"
    )


def render_plan_markdown(plan: Plan, limit: int = DEFAULT_LIMIT, full_plan_hint: str = "") -> str:
    head = [
        f"### metasync plan: `{plan.environment}`",
        "",
        f"**{summary_line(plan.summary())}** on `{plan.server}` ({FLAVOUR_NAMES.get(plan.flavour, plan.flavour)})"
        + (f", project `{plan.project[0]}` (from {plan.project[1]})" if plan.project else ""),
        "",
    ]
    if not plan.has_changes:
        head.append("No changes: the server matches git.")
    for refusal in plan.refusals:
        head += [f"> **Refused**: {refusal.message}. {refusal.hint or ''}", ""]
    out = "\n".join(head) + "\n"
    pending = plan.pending
    # the objects left alone are at least counted, whatever the changes take
    reserve = len(_unmanaged(plan, 0)) if plan.unmanaged else 0
    for shown, change in enumerate(pending):
        section = _section(change)
        footer = _footer(pending[shown:], full_plan_hint)
        if len(out) + len(section) + len(footer) + reserve > limit:
            out += footer
            break
        out += section
    if plan.ignored:
        out += f"\n<sub>{ignored_line(plan.ignored)}</sub>\n"
    if plan.unmanaged:
        out += _unmanaged(plan, limit - len(out))
    return out
