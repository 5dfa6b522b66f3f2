"""Users, roles, login, server-side sessions, API tokens and the access rules every endpoint declares."""


def init_app(app) -> None:
    from flask_babel import lazy_gettext as _l

    from accounts import access, account_views, cli, demo, models, service, sessions, views
    from core.audit import track
    from core.demo import register_loader
    from core.retention import register_deletion

    service.use_test_password_hashing(app.extensions["krisrutin.settings"].env == "testing")
    access.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(account_views.bp)
    cli.init_app(app)
    from accounts import token_views

    app.register_blueprint(token_views.bp)
    track(models.User, "user")
    register_deletion(app, "user_sessions", _l("Inloggningar (raderade)"), sessions.delete_old_sessions)
    register_loader(app, demo.load)  # the demo users, first: the other parts name them
