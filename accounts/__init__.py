"""Users, roles, login, API tokens and the access rules every endpoint declares."""


def init_app(app) -> None:
    from accounts import access, cli, models, service, views
    from core.audit import track

    service.use_test_password_hashing(app.extensions["krisrutin.settings"].env == "testing")
    access.init_app(app)
    app.register_blueprint(views.bp)
    cli.init_app(app)
    from accounts import token_views

    app.register_blueprint(token_views.bp)
    track(models.User, "user")
