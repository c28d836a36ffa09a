"""One module per operation (plan, apply, rollback, promote, ...): each a function that takes
the project and returns a result; the CLI parses, calls one, and renders what it returns.

Each operation module loads on first use (``operations.plan``): a command pays for its own
operation only, not for every other's libraries (git, ruamel.yaml, ...)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the type checker sees; at run time __getattr__ imports on first use
    from metasync.operations import (
        adopt,
        apply,
        changed,
        drift,
        export,
        init,
        lock,
        plan,
        promote,
        rollback,
        saved_plan,
        status,
        workflow_tests,
    )

__all__ = [
    "adopt", "apply", "changed", "drift", "export", "init", "lock", "plan", "promote", "rollback",
    "saved_plan", "status", "workflow_tests",
]  # fmt: skip


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")  # binds it here: asked once
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
