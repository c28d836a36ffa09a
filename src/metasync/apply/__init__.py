"""Apply: ordered steps from a plan, and the executor that runs them against a writer."""
