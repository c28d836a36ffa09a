"""A library loaded on first use, for what most commands never touch (GitPython costs a third of
a second to import, and only promotion pins, ``changed`` and ``promote`` read git):

    if TYPE_CHECKING:  # the type checker sees the real module
        import git
    else:
        git = lazy_module("git")

``git.Repo(...)`` then imports git the first time it runs; a run that never gets there never
imports it. Annotations stay strings (``from __future__ import annotations``).
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name``: any attribute imports it (once: Python keeps it)."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    return LazyModule(name)
