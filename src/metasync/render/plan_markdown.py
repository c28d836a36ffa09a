"""``plan -o markdown``: a pull-request comment, one collapsible section per resource, size-capped."""

from __future__ import annotations

from metasync.model.flavour import FLAVOUR_NAMES
from metasync.plan.model import Change, Plan
from metasync.render.ignored import ignored_line
from metasync.render.plan_text import detail, field_lines, remarks
from metasync.render.values import summary_line

#: GitHub refuses comments over 65,536 characters; keep room for a sticky-comment header
DEFAULT_LIMIT = 60_000
_MARK = {"create": "+", "update": "~", "delete": "-"}


def _section(change: Change) -> str:
    lines = [
        f"<details><summary><code>{_MARK[change.action]} {change.title}</code> "
        f"({detail(change)})</summary>",
        "",
        *(line for _, text in remarks(change) for line in (f"> {text}", "")),
        "```diff",
    ]
    for field in change.fields:
        for mark, _, text in field_lines(field):
            lines.append(f"{'!' if mark == '~' else mark} {text}")
    lines += ["```", "", "</details>", ""]
    return "\n".join(lines)


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
    for shown, change in enumerate(pending):
        section = _section(change)
        rest = len(pending) - shown
        footer = (
            f"\n**{rest} more resource(s) not shown** (comment size limit). "
            f"{full_plan_hint or 'The full plan is in the job log (`metasync plan`).'}\n"
        )
        if len(out) + len(section) + len(footer) > limit:
            return out + footer
        out += section
    if plan.ignored:
        out += f"\n<sub>{ignored_line(plan.ignored)}</sub>\n"
    if plan.unmanaged:
        out += f"\n<sub>{len(plan.unmanaged)} object(s) on the server are not in git and are left alone.</sub>\n"
    return out
