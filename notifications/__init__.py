"""E-mail and SMS through a durable outbox: never lost, never sent twice, urgent first.

Other domains call :func:`notifications.service.send` inside their own transaction; dispatcher
processes (``flask --app app dispatcher run``) claim and send what is queued.
"""


def init_app(app) -> None:
    """Register this package's blueprints and CLI commands."""
    from notifications import cli, models, views  # noqa: F401  (models: tables known to migrations)

    app.register_blueprint(views.bp)
    cli.init_app(app)
