"""metasync as workers of a Conductor control plane (issue 18): what a worker needs besides the
operations it runs."""
