"""A server's JSON list parsed as its bytes arrive, element by element, each with its own text.

A 3.15 server sends its 10,000 workflow definitions (60 MB) over half a second after it has built
them; parsing them as they come overlaps the two, and never holds the whole answer twice (as
bytes and as text) beside the objects. Each element's text, exactly as the server wrote it, is
handed to ``digest`` (the plan's memo keys an unchanged object by it, without walking the
object). An object with a digest is kept as that text (``Listed``), parsed again where it is
used: a plan that finds most objects unchanged never walks them, and the text takes a fifth of
the memory of the objects (10,000 workflows: 60 MB against 300).

An answer that is not a list (an error body, a proxy's page) is kept whole and parsed at the end
with ``json.loads``, so what the caller reports about it does not change.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from metasync.bulk import no_cycles

_SCAN = json.JSONDecoder().raw_decode
_SPACE = " \t\n\r"
_AFTER_SCALAR = frozenset(_SPACE + ",]")
#: an element that has not arrived whole is tried again once this many more characters came
#: (or twice its length so far: a large one is not parsed again for every chunk)
_RETRY_AFTER = 64 * 1024


#: the fields a ``Listed`` object answers without parsing its text (what identifies it, whose it
#: is): every object of a list is asked them
HEAD = ("name", "version", "ownerApp")


class Listed(Mapping[str, Any]):
    """A JSON object kept as its text, parsed at the first look past ``HEAD`` (then kept parsed).

    A read-only mapping: what needs a ``dict`` (``json.dumps``, ``marshal``) takes ``dict(x)``."""

    __slots__ = ("_head", "_text", "_value")

    def __init__(self, text: str, value: Mapping[str, Any]) -> None:
        self._text: str | None = text
        self._head = {key: value[key] for key in HEAD if key in value}
        self._value: dict[str, Any] | None = None

    def glance(self) -> Mapping[str, Any]:
        """The object parsed, without keeping the parsed form (it stays text): for a look whose
        result is all that is kept (the fingerprint of an unchanged object)."""
        if self._value is not None:
            return self._value
        assert self._text is not None
        parsed: dict[str, Any] = json.loads(self._text)
        return parsed

    def _parsed(self) -> dict[str, Any]:
        if self._value is None:
            assert self._text is not None
            self._value = json.loads(self._text)
            self._text = None
        return self._value

    def __getitem__(self, key: str) -> Any:
        if self._value is None and key in HEAD:
            return self._head[key]
        return self._parsed()[key]

    def get(self, key: str, default: Any = None) -> Any:
        if self._value is None and key in HEAD:
            return self._head.get(key, default)
        return self._parsed().get(key, default)

    def __contains__(self, key: object) -> bool:
        if self._value is None and key in HEAD:
            return key in self._head
        return key in self._parsed()

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())

    def __eq__(self, other: object) -> bool:
        return self._parsed() == (dict(other) if isinstance(other, Listed) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Listed({self._parsed()!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # copied or pickled: as the dict it is
        return (dict, (self._parsed(),))


def glance(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """``value``, parsed for this look only when it is a ``Listed`` still kept as text."""
    return value.glance() if isinstance(value, Listed) else value


class Digested(list[Any]):
    """A list answer with each element's ``digest`` of its text, in order."""

    digests: list[Any]


class ListParser:
    """Feed it the answer's bytes (``feed``), then take the value (``result``)."""

    def __init__(self, digest: Callable[[str], Any] | None = None) -> None:
        self._digest = digest
        self._decode = codecs.getincrementaldecoder("utf-8")().decode
        self._head = b""  # the first bytes, until they say whether the answer is a list
        self._whole: bytearray | None = None  # not a list: kept, parsed at the end
        self._text = ""  # what is not parsed yet
        self._wait = 0  # do not try again before the text is this long
        self._opened = False  # the bytes began with '['
        self._started = False  # the '[' was read
        self._after_item = False  # an element was read: ',' or ']' comes next
        self._after_comma = False  # a ',' was read: an element comes next
        self._closed = False  # the ']' was read
        self._error: ValueError | None = None
        self.received = 0  # bytes
        self.items: list[Any] = []
        #: ``digest(text)`` of each element, in order (empty without ``digest``)
        self.digests: list[Any] = []

    def feed(self, chunk: bytes) -> None:
        """More of the answer; ValueError when it cannot be JSON (then ``result`` raises it)."""
        if self._error is not None:
            raise self._error
        try:
            self._feed(chunk)
        except ValueError as exc:
            self._error = exc
            raise

    def _feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self._whole is not None:
            self._whole += chunk
            return
        if not self._opened:
            self._head += chunk
            start = self._head.lstrip()
            if not start:
                return
            if not start.startswith(b"["):
                self._whole = bytearray(self._head)
                return
            chunk, self._head = self._head, b""
            self._opened = True
        self._text += self._decode(chunk)
        if len(self._text) >= self._wait:
            with no_cycles():
                self._scan(final=False)

    def result(self) -> Any:
        """The answer's value; ValueError when it is not JSON (or not whole)."""
        if self._error is not None:
            raise self._error
        if self._whole is not None:
            return json.loads(bytes(self._whole))
        if not self._opened:
            return json.loads(self._head)  # empty or blank: json says why
        self._text += self._decode(b"", True)
        with no_cycles():
            self._scan(final=True)
        if not self._closed:
            raise ValueError("the list is not closed (the answer was cut short)")
        if self._text.strip(_SPACE):
            raise ValueError(f"extra data after the list: {self._text.strip(_SPACE)[:40]!r}")
        listed = Digested(self.items)
        listed.digests = self.digests
        return listed

    def _scan(self, *, final: bool) -> None:
        text, pos, end = self._text, 0, len(self._text)
        self._wait = 0
        while not self._closed:
            while pos < end and text[pos] in _SPACE:
                pos += 1
            if pos == end:
                break
            if not self._started:  # the '[' (the bytes began with it)
                self._started = True
                pos += 1
                continue
            if self._after_item:
                if text[pos] == "]":
                    self._closed = True
                    pos += 1
                    break
                if text[pos] != ",":
                    raise ValueError(f"expected ',' or ']' after element {len(self.items)}")
                pos += 1
                self._after_item = False
                self._after_comma = True
                continue
            if text[pos] == "]" and not self._after_comma:  # an empty list
                self._closed = True
                pos += 1
                break
            try:
                item, stop = _SCAN(text, pos)
            except json.JSONDecodeError:
                if final:
                    raise
                self._wait = end - pos + max(_RETRY_AFTER, end - pos)
                break
            if (
                not final
                and not isinstance(item, (dict, list, str))
                and (stop == end or text[stop] not in _AFTER_SCALAR)
            ):  # a number read up to the chunk's end ("2.5" of "2.5e3") may go on in the next
                self._wait = end - pos + 1
                break
            if self._digest is not None:
                piece = text[pos:stop]
                digest = self._digest(piece)
                self.digests.append(digest)
                if digest is not None and isinstance(item, dict):
                    item = Listed(piece, item)
            self.items.append(item)
            pos = stop
            self._after_item = True
            self._after_comma = False
        self._text = text[pos:]
