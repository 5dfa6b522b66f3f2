"""The working-time calendar: working days, office hours (kontorstid), who is responsible, check dates."""


def init_app(app) -> None:
    """Register this package's blueprints and the calendar API's description."""
    from core.openapi import register_api_area
    from worktime import openapi, views

    app.register_blueprint(views.bp)
    register_api_area(app, openapi.api_area())
