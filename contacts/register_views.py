"""register_views: to be written (issue 4)."""
