"""The contacts register (kontaktregister) and the monthly contact check (test av rutin).

Modules: ``models`` and ``register`` (the register and its rules), ``register_views`` and the
``register_*_views`` beside it (team pages, CSV import/export), ``api`` (JSON API),
``check_models``, ``check_links`` and ``checks`` (the monthly check: plan, messages, reminders,
answers by SMS), ``check_public`` (the personal link pages), ``check_views`` (the team's check
page, review queue, call list, report), ``privacy`` (register extract and erasure).
"""


def init_app(app) -> None:
    """Register this package's blueprints, scheduled jobs and SMS reply handler."""
    from contacts import (  # noqa: F401  (check_models, models: tables known to migrations)
        api,
        check_models,
        check_public,
        check_views,
        models,
        privacy,
        register_views,
    )

    register_views.init_app(app)  # the register's pages, from several modules, and its CLI
    for blueprint in (api.bp, check_public.bp, check_views.bp, privacy.bp):
        app.register_blueprint(blueprint)
    from contacts import checks  # noqa: F401  (registers planners, task handlers, the JA/NEJ handler)
