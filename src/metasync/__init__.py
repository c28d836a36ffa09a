"""metasync: Conductor metadata from git."""

__version__ = "0.1.0"
