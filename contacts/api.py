"""api: to be written (issue 4)."""
