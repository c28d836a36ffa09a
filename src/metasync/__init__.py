"""metasync: Conductor metadata from git."""

__all__ = ["__version__"]

try:  # from git tags when built (setuptools-scm writes it at install; importing it costs nothing)
    from metasync._version import __version__
except ImportError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
