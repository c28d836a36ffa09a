"""Content fingerprints: equal canonical forms, equal fingerprints (map key order ignored)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(canonical: Any) -> str:
    """``sha256:`` and the first 16 hex digits of the canonical JSON's hash."""
    return "sha256:" + hashlib.sha256(canonical_json(canonical).encode()).hexdigest()[:16]
