"""E-mail and SMS through a durable outbox (issue 3)."""


def init_app(app) -> None:
    """Register this package's blueprints and CLI commands (none yet)."""
