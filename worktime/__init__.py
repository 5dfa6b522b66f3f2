"""The working-time calendar: working days, office hours (kontorstid), who is responsible, check dates."""


def init_app(app) -> None:
    """Register this package's blueprints and CLI commands."""
    from worktime import views

    app.register_blueprint(views.bp)
