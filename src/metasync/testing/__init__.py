"""`metasync test`: WorkflowTest documents run on a real server and judged (runner, expectations)."""
