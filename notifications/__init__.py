"""E-mail and SMS through a durable outbox (issue 3)."""


def init_app(app) -> None:
    """Register this package's blueprints and CLI commands."""
    from notifications import models  # noqa: F401  (tables known to migrations)
