"""scheduling package."""


def init_app(app) -> None:
    """Register this package's blueprints and CLI commands."""
