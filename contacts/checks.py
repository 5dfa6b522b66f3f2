"""checks: to be written (issue 4)."""
