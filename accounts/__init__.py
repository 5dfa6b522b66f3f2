"""Users, roles, login, API tokens and the access rules every endpoint declares."""


def init_app(app) -> None:
    from accounts import access, cli, demo, models, service, views
    from core.audit import track
    from core.demo import register_loader

    service.use_test_password_hashing(app.extensions["krisrutin.settings"].env == "testing")
    access.init_app(app)
    app.register_blueprint(views.bp)
    cli.init_app(app)
    from accounts import token_views

    app.register_blueprint(token_views.bp)
    track(models.User, "user")
    register_loader(app, demo.load)  # the demo users, first: the other parts name them
