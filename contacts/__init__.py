"""The contacts register (kontaktregister) and the monthly contact check (test av rutin)."""


def init_app(app) -> None:
    """Register this package's blueprints and CLI commands."""
    from contacts import models  # noqa: F401  (tables known to migrations)
