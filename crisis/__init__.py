"""Disruptions (driftstörningar): notices, routing, letters, handover, physical visits (issues 5, 6)."""


def init_app(app) -> None:
    """Register this package's blueprints and CLI commands (none yet)."""
