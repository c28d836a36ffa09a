"""Fingerprints remembered between plans: an unchanged object is not normalized again.

``build_plan`` compares each object's canonical form (``normalize``) by fingerprint; normalizing
thousands of workflows, on both sides, is most of a plan's own time. The memo maps a digest of an
object as given (its kind, the server's flavour, the live-state fields left out, its JSON) to the
fingerprint of its canonical form, for objects that normalize without unknown fields. Nothing
that holds a secret is remembered, nor keyed: a desired spec with a ``((secrets.X))`` placeholder,
and a server's object that holds a secret's value (marshal writes strings as UTF-8), are computed every time. The memo is data; the
operation that plans loads it from the project's cache and stores it back (``entries``).
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from metasync.conductor.normalize import Flavour, Unknown, normalize
from metasync.conductor.stream import glance
from metasync.model.fingerprint import fingerprint

Entries = dict[bytes, str]


class FingerprintMemo:
    def __init__(self, entries: Mapping[bytes, str] | None = None,
                 secret_values: Sequence[str] = ()) -> None:  # fmt: skip
        self._known: Mapping[bytes, str] = entries or {}
        #: what this plan used or found: what is worth keeping for the next one
        self.entries: Entries = {}
        self._secrets = [s.encode("utf-8", "surrogatepass") for s in secret_values if s]

    def desired_key(self, flavour: str, live_state: Sequence[str], digest: bytes) -> bytes:
        """The memo's key for a desired spec as git renders it, from its ``spec_digest`` (kept
        with the rendered manifests): what ``key`` would hash, without marshalling it again.
        Not checked for secret values: a spec without a placeholder holds only what the cached
        render holds already (manifests, variables), and the digest is one-way."""
        data = b"\0".join([b"desired", flavour.encode(), "\0".join(live_state).encode(), digest])
        return hashlib.blake2b(data, digest_size=20).digest()

    def created(self, flavour: str, live_state: Sequence[str], digest: bytes) -> str | None:
        """The fingerprint a plan published of a new object (every secret value in it as its
        placeholder, planner._fingerprint) whose rendered spec has ``digest``, if an earlier plan
        found it (``found_created``)."""
        found = self._known.get(self._created_key(flavour, live_state, digest))
        if found is not None:  # both kept for the next plan, and for the apply's read-back
            self.entries[self._created_key(flavour, live_state, digest)] = found
            plain = self._known.get(self.desired_key(flavour, live_state, digest))
            if plain is not None:
                self.entries[self.desired_key(flavour, live_state, digest)] = plain
        return found

    def found_created(self, flavour: str, live_state: Sequence[str], digest: bytes,
                      published: str, plain: str) -> None:  # fmt: skip
        """What a plan found of a new object: the fingerprint it publishes, and the plain one
        (``same`` compares that, once the object is written)."""
        self.entries[self._created_key(flavour, live_state, digest)] = published
        self.entries[self.desired_key(flavour, live_state, digest)] = plain

    def _created_key(self, flavour: str, live_state: Sequence[str], digest: bytes) -> bytes:
        # with the secrets' values: a literal equal to one is masked too
        secrets = hashlib.blake2b(b"\0".join(sorted(self._secrets)), digest_size=20).digest()
        data = b"\0".join([b"created", self.desired_key(flavour, live_state, digest), secrets])
        return hashlib.blake2b(data, digest_size=20).digest()

    def listed_key(self, kind: str, flavour: str, live_state: Sequence[str],
                   digest: bytes) -> bytes:  # fmt: skip
        """The memo's key for a server's object from the ``text_digest`` of its JSON text as
        listed (conductor/stream.py): the same text parses to the same object."""
        parts = [b"listed", kind.encode(), flavour.encode(), "\0".join(live_state).encode(), digest]
        return hashlib.blake2b(b"\0".join(parts), digest_size=20).digest()

    def key(self, kind: str, flavour: str, live_state: Sequence[str],
            value: Mapping[str, Any]) -> bytes | None:  # fmt: skip
        """The memo's key for ``value``; None when it must not be remembered (a secret in it, or
        a value marshal does not write)."""
        if not isinstance(value, dict):  # a server object kept as its text (stream.Listed)
            value = dict(glance(value))
        try:
            # marshal's version 0 writes plain data by value alone (no references, no interning)
            # and fast: 20 times faster than normalizing, 3 times faster than JSON
            data = marshal.dumps((kind, flavour, tuple(live_state), value), 0)
        except ValueError:
            return None
        if b"((secrets." in data or any(s in data for s in self._secrets):
            return None
        return hashlib.blake2b(data, digest_size=20).digest()

    def fingerprint(self, key: bytes | None, compute: Callable[[], str | None]) -> str | None:
        """The fingerprint under ``key``, or ``compute()``'s (remembered when it is not None)."""
        if key is None:
            return compute()
        known = self._known.get(key)
        if known is None:
            known = compute()
            if known is None:
                return None
        self.entries[key] = known
        return known

    def same(self, kind: str, flavour: Flavour, live_state: Sequence[str],
             spec: Mapping[str, Any], current: Mapping[str, Any], *,
             digest: bytes | None = None, listed: bytes | None = None) -> str | None:  # fmt: skip
        """The fingerprint ``spec`` and ``current`` share when their canonical forms (without
        ``live_state``) are equal, known from the memo or found now; else None (then the planner
        compares them in full). ``digest``: ``spec``'s ``spec_digest``, when ``spec`` is the
        rendered spec itself (no secret put in, no server field kept); ``listed``:
        ``current``'s ``text_digest``, when the server's list gave one."""
        wanted_key = (
            self.desired_key(flavour, live_state, digest)
            if digest is not None
            else self.key(kind, flavour, live_state, spec)
        )
        have_key = (
            self.listed_key(kind, flavour, live_state, listed)
            if listed is not None
            else self.key(kind, flavour, live_state, current)
        )
        if wanted_key is None or have_key is None:
            return None

        def wanted() -> str | None:
            unknown: list[Unknown] = []
            canonical = _without(normalize(kind, spec, flavour, unknown), live_state)
            return None if unknown else fingerprint(canonical)

        def have() -> str:
            # a server object listed as text stays text: 10,000 unchanged workflows parsed and
            # kept would hold 250 MiB for a fingerprint each (a changed one is parsed again)
            return fingerprint(_without(normalize(kind, glance(current), flavour), live_state))

        found = self.fingerprint(wanted_key, wanted)
        return found if found is not None and found == self.fingerprint(have_key, have) else None


def _without(spec: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in fields} if fields else spec


def spec_digest(kind: str, spec: Mapping[str, Any]) -> bytes | None:
    """A digest of a rendered spec, for ``FingerprintMemo.desired_key``; None for a spec that
    must not be remembered (a ``((secrets.`` placeholder in it) or that marshal cannot write."""
    try:
        data = marshal.dumps((kind, spec), 0)  # type: ignore[arg-type]
    except ValueError:
        return None
    if b"((secrets." in data:
        return None
    return hashlib.blake2b(data, digest_size=20).digest()


def text_digest(secret_values: Iterable[str]) -> Callable[[str], bytes | None]:
    """What a plan keeps of each object's JSON text as the server lists it: a digest, or None
    for a text that must not be remembered, or that may not show a secret it holds (a secret's
    value in it, a placeholder, or any escape: ``\\`` can spell any character)."""
    needles = [value for value in secret_values if value]

    def digest(text: str) -> bytes | None:
        if "\\" in text or "((secrets." in text or any(n in text for n in needles):
            return None
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).digest()

    return digest
