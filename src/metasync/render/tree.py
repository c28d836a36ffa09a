"""Values as a reviewer reads them: an indented, YAML-like tree within a width.

Maps nest by key; a list of tasks reads task by task, each headed by its ``taskReferenceName`` and
type, its nested tasks (switch cases, fork branches, loops) indented beneath; short lists of scalars
stay on one line. Strings are JSON-quoted; one too long for the width continues on the next lines
with a ``\\`` at each break (as a YAML double-quoted string does), and a string of several lines is
a ``|`` block. Nothing is cut: every value is shown whole.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: (mark, text): mark is "+" added, "-" removed, "~" changed, " " unchanged (context)
Line = tuple[str, str]

INDENT = "  "
#: a text line never gets narrower than this, however deep it is nested
_MIN_WIDTH = 40
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$][\w.$\-\[\]=/]*")
#: where a long string may break: after a space, or after a URL's or a list's punctuation
_WORD = re.compile(r"[^\s/?&,;]+[/?&,;]*\s*|[/?&,;]+\s*|\s+")
#: the most lines one string value shows (a description can hold a million characters)
MAX_LINES = 200
#: the most lines (both sides) a tree diff matches line by line
_MATCHED = 4_000
#: unchanged lines of a changed value shown around each change; longer runs are elided
CONTEXT = 2


def scalar(value: Any) -> str:
    """One value as it reads on one line: JSON (strings quoted), ``(absent)`` for None."""
    if value is None:
        return "(absent)"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def is_task(value: Any) -> bool:
    return isinstance(value, Mapping) and "taskReferenceName" in value


def task_heading(task: Mapping[str, Any]) -> str:
    return f"{task.get('taskReferenceName')} ({task.get('type') or 'SIMPLE'})"


def value_lines(label: str, value: Any, width: int) -> list[str]:
    """``label: value`` as lines no wider than ``width`` (where a value can be broken)."""
    return _labelled(label, value, "", width)


def fits(text: str, width: int) -> bool:
    return len(text) <= width and "\n" not in text


def diff_lines(label: str, before: Any, after: Any, width: int) -> list[Line]:
    """A changed value: one ``label: before -> after`` line when it fits, else both as trees,
    line by line (``-`` only before, ``+`` only after, `` `` both, long unchanged runs elided)."""
    one = f"{label}: {scalar(before)} -> {scalar(after)}"
    if fits(one, width):
        return [("~", one)]
    old = _labelled(label, before, "", width)
    new = _labelled(label, after, "", width)
    if old[0] == new[0] and old[0].endswith((":", "|")):  # same head: a tree diff beneath it
        return [("~", old[0]), *_line_diff(old[1:], new[1:])]
    return [("~", f"{label}:"), *_line_diff(_bare(before, width), _bare(after, width))]


def _bare(value: Any, width: int) -> list[str]:
    """``value`` without a label, indented once: the lines of a tree diff."""
    room = max(width - len(INDENT), _MIN_WIDTH)
    if isinstance(value, str):
        return [INDENT + line for line in _item_string(value, room)]
    if isinstance(value, Mapping) and value:
        if is_task(value):
            return [INDENT + task_heading(value), *_task_body(value, INDENT * 2, width)]
        return _map_body(value, INDENT, width)
    if isinstance(value, list) and value and not fits(INDENT + scalar(value), width):
        return _list_body(value, INDENT, width)
    return [INDENT + scalar(value)]


def _line_diff(old: Sequence[str], new: Sequence[str]) -> list[Line]:
    if len(old) + len(new) > _MATCHED:  # matching lines would take long: both sides whole
        return [*(("-", line) for line in old), *(("+", line) for line in new)]
    out: list[Line] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    groups = matcher.get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(groups):
        if tag == "equal":
            same = list(old[i1:i2])
            head = same[:CONTEXT] if index else []
            tail = same[-CONTEXT:] if index < len(groups) - 1 else []
            if len(same) > len(head) + len(tail) + 1:
                out += [(" ", line) for line in head]
                hidden = len(same) - len(head) - len(tail)
                indent = re.match(r" *", same[len(head)])
                pad = indent.group(0) if indent else ""
                out.append((" ", f"{pad}... ({hidden} unchanged line(s))"))
                out += [(" ", line) for line in tail]
            else:
                out += [(" ", line) for line in same]
            continue
        out += [("-", line) for line in old[i1:i2]]
        out += [("+", line) for line in new[j1:j2]]
    return out


def _key(key: Any) -> str:
    text = str(key)
    return text if _PLAIN_KEY.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def _labelled(label: str, value: Any, indent: str, width: int) -> list[str]:
    room = max(width - len(indent), _MIN_WIDTH)
    head = f"{indent}{label}:"
    if isinstance(value, str):
        return _string(head, value, indent, room)
    if isinstance(value, Mapping):
        if not value:
            return [f"{head} {{}}"]
        if is_task(value):
            return [f"{indent}{label} ({value.get('type') or 'SIMPLE'}):",
                    *_task_body(value, indent + INDENT, width)]  # fmt: skip
        return [head, *_map_body(value, indent + INDENT, width)]
    if isinstance(value, list):
        inline = f"{head} {scalar(value)}"
        if not value or (all(not isinstance(v, (Mapping, list)) for v in value)
                         and fits(inline, width)):  # fmt: skip
            return [inline]
        return [head, *_list_body(value, indent + INDENT, width)]
    return [f"{head} {scalar(value)}"]


def _map_body(value: Mapping[str, Any], indent: str, width: int) -> list[str]:
    return [line for k, v in value.items() for line in _labelled(_key(k), v, indent, width)]


def _task_body(task: Mapping[str, Any], indent: str, width: int) -> list[str]:
    own = {k: v for k, v in task.items() if k not in ("taskReferenceName", "type")}
    return _map_body(own, indent, width)


def _list_body(items: Sequence[Any], indent: str, width: int) -> list[str]:
    """Each item after a ``- `` at ``indent``; what it holds aligned after the dash."""
    out: list[str] = []
    inner = indent + INDENT
    for item in items:
        if is_task(item):
            out.append(f"{indent}- {task_heading(item)}")
            out += _task_body(item, inner, width)
            continue
        if isinstance(item, Mapping) and item:
            lines = _map_body(item, inner, width)
        elif isinstance(item, list) and item:
            lines = _list_body(item, inner, width)
        elif isinstance(item, str):
            lines = [
                inner + line for line in _item_string(item, max(width - len(inner), _MIN_WIDTH))
            ]
        else:
            lines = [inner + scalar(item)]
        out.append(f"{indent}- {lines[0][len(inner) :]}")
        out += lines[1:]
    return out


def _string(head: str, value: str, indent: str, room: int) -> list[str]:
    one = f"{head} {scalar(value)}"
    if "\n" not in value and len(one) - len(indent) <= room:
        return [one]
    body = indent + INDENT
    if "\n" in value:
        return [f"{head} |", *(body + line for line in _block(value, room - len(INDENT)))]
    first = room - (len(head) - len(indent)) - 1
    chunks = _quoted(value, first, room - len(INDENT))
    return [f"{head} {chunks[0]}", *(body + chunk for chunk in chunks[1:])]


def _item_string(value: str, room: int) -> list[str]:
    if fits(scalar(value), room):
        return [scalar(value)]
    if "\n" in value:
        return ["|", *(INDENT + line for line in _block(value, room - len(INDENT)))]
    return _quoted(value, room, room)


def _block(value: str, room: int) -> list[str]:
    """The lines of a ``|`` block, each broken to ``room`` (a ``\\`` at each break)."""
    lines = [chunk for line in value.rstrip("\n").split("\n")
             for chunk in _broken(line, room, room, escape=False)]  # fmt: skip
    return _capped(lines)


def _capped(lines: list[str]) -> list[str]:
    """At most ``MAX_LINES`` lines of one string, then how many more there are and where."""
    if len(lines) <= MAX_LINES:
        return lines
    return [*lines[:MAX_LINES],
            f"... ({len(lines) - MAX_LINES} more line(s) of this value: `-o json` has it whole)"]  # fmt: skip


def _quoted(value: str, first: int, room: int) -> list[str]:
    """A JSON string broken over lines, ``\\`` at each break (a YAML double-quoted string)."""
    chunks = _broken(value, first - 1, room, escape=True)
    chunks[0] = '"' + chunks[0]
    chunks[-1] += '"'
    return _capped(chunks)


def _broken(text: str, first: int, rest: int, *, escape: bool) -> list[str]:
    """``text`` in pieces of at most ``first`` (then ``rest``) characters, broken after a space
    where it can, each but the last ending in ``\\``; ``escape``: each piece JSON-escaped.
    Linear in the length of ``text`` (a description can hold a million characters)."""
    rooms = (max(first - 1, 10), max(rest - 1, 10))

    def encoded(piece: str) -> str:
        return json.dumps(piece, ensure_ascii=False)[1:-1] if escape else piece

    pieces: list[str] = []  # encoded
    current = ""
    for word in _WORD.findall(text) or [""]:
        token = encoded(word)
        if len(current) + len(token) <= rooms[bool(pieces)]:
            current += token
            continue
        if current:
            pieces.append(current)
            current = ""
        if len(token) <= rooms[1]:
            current = token
            continue
        # a word longer than a line: cut between characters, an escape (\n, \") kept whole
        units = list(token) if len(token) == len(word) else [encoded(c) for c in word]
        room = rooms[bool(pieces)]
        for unit in units:
            if len(current) + len(unit) > room:
                pieces.append(current)
                current, room = "", rooms[1]
            current += unit
    pieces.append(current)
    return [piece + "\\" for piece in pieces[:-1]] + [pieces[-1]]


def wrap_names(head: str, names: Sequence[str], width: int, indent: str = INDENT) -> list[str]:
    """``head`` then ``names`` joined with commas, broken between names (never inside one) into
    lines of at most ``width`` characters where names allow; continuation lines start ``indent``."""
    lines: list[str] = []
    current = head
    for index, name in enumerate(names):
        piece = name + ("," if index < len(names) - 1 else "")
        if current == head:
            current += piece
        elif len(current) + 1 + len(piece) > width:
            lines.append(current)
            current = indent + piece
        else:
            current += " " + piece
    lines.append(current)
    return lines
