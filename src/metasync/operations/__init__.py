"""One module per operation (plan, apply, rollback, promote, ...): each a function that takes
the project and returns a result; the CLI parses, calls one, and renders what it returns."""

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
