"""Building large plain data without the cyclic garbage collector in the way.

Reading a server's list (JSON), a cached render (pickle) or thousands of manifests makes hundreds
of thousands of dicts and lists and no reference cycles; Python's collector runs every 700 new
containers all the same, and its older generations walk every object alive: a fifth of a plan's
CPU time at 2,000 workflows. ``no_cycles()`` pauses it while such data is built, and when the
last pause ends (reads in a thread and the render beside them may overlap), moves what is alive
to the collector's permanent generation (``gc.freeze``): otherwise the first collection after
the pause walks all of it at once. Frozen objects are still freed when no longer referenced;
only a reference cycle made before the freeze and dropped after it stays (a long-running process
may ``gc.unfreeze()`` and collect between its tasks).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    """How many blocks pause the collector now, and whether it ran before the first."""

    lock = threading.Lock()
    count = 0
    was_enabled = False


@contextmanager
def no_cycles() -> Iterator[None]:
    """Pause the cyclic collector for the block (nested and threaded pauses count)."""
    with _Pauses.lock:
        if _Pauses.count == 0:
            _Pauses.was_enabled = gc.isenabled()
            gc.disable()
        _Pauses.count += 1
    try:
        yield
    finally:
        with _Pauses.lock:
            _Pauses.count -= 1
            if _Pauses.count == 0 and _Pauses.was_enabled:
                gc.freeze()
                gc.enable()
