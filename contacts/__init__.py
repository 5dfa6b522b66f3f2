"""The contacts register (kontaktregister) and the monthly contact check (test av rutin).

Modules: ``models`` and ``register`` (the register and its rules), ``register_views`` with
``register_listing`` and the ``register_*_views`` beside it (the team's pages: providers,
contacts, history, CSV import/export), ``api`` (JSON API), ``check_models``, ``check_links`` and
``checks`` (the monthly check: plan, messages, reminders, answers by SMS), ``check_public`` (the
personal link pages), ``check_views`` (the team's check page, review queue, call list, report),
``privacy`` (register extract and erasure), ``openapi`` (the register API's part of the OpenAPI
description), ``recipients`` (the register as the recipients of notifications), ``retention``
and ``demo`` (its gallring rules and demo data).
"""


def init_app(app) -> None:
    """Register this package's blueprints, scheduled jobs, SMS reply handler, API description,
    link pages, audited models, retention rules, demo data, and the hooks that tell notifications
    who its recipients are (failing addresses, SMS senders, names on the deliveries page)."""
    from contacts import (
        api,
        check_models,
        check_public,
        check_queries,
        check_todo,
        check_views,
        checks,  # noqa: F401  (registers planners, task handlers, the JA/NEJ handler)
        demo,
        models,
        openapi,
        privacy,
        recipients,
        register_views,
        retention,
    )
    from core import link_pages
    from core.audit import track
    from core.demo import register_loader
    from core.openapi import register_api_area
    from core.todo import register_todo
    from notifications.recipients import register_hooks
    from notifications.references import register_reference

    register_views.init_app(app)  # the register's pages, from several modules, and its CLI
    for blueprint in (api.bp, check_public.bp, check_views.bp, privacy.bp):
        app.register_blueprint(blueprint)
    register_api_area(app, openapi.api_area())
    register_reference(app, check_queries.REF_TYPE, check_views.describe_check)  # "Gäller" on the deliveries page
    register_hooks(
        app,
        mark_failing=recipients.mark_address_failing,
        find_sender=recipients.find_sender,
        describe=recipients.describe,
    )
    link_pages.register_pages(app, blueprints={check_public.bp.name})
    track(models.ContactPerson, "contact")
    track(models.Provider, "provider")
    track(check_models.CheckRecipient, "check_recipient")
    track(check_models.CheckCorrection, "check_correction")
    retention.init_app(app)  # gallring of the monthly check's rows
    register_loader(app, demo.load)  # the demo providers and contacts
    register_todo(app, check_todo.items)  # the start page: check calls, corrections, the month's state
