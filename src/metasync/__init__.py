"""metasync: Conductor metadata from git."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metasync")  # from git tags when built (setuptools-scm)
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
