"""Durable due work (scheduled tasks) and the tick that runs it: ``flask tick``,
``flask scheduler run``. Domains register task handlers and planners in ``scheduling.registry``.
"""


def init_app(app) -> None:
    """Make the tables known (create_all, migrations) and register the CLI commands."""
    from scheduling import cli, models  # noqa: F401  (tables known to migrations)

    cli.init_app(app)
