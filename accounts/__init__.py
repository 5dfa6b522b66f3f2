"""Users, roles, login, API tokens and the access rules every endpoint declares."""


def init_app(app) -> None:
    from accounts import access, cli, views

    access.init_app(app)
    app.register_blueprint(views.bp)
    cli.init_app(app)
