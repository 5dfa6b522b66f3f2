"""The contacts register (kontaktregister) and the monthly contact check (test av rutin).

Modules: ``models`` and ``register`` (the register and its rules), ``register_views`` (team
pages, CSV import/export), ``api`` (JSON API), ``check_models``, ``check_links`` and ``checks``
(the monthly check: plan, messages, reminders, answers by SMS), ``check_public`` (the personal
link pages), ``check_views`` (the team's check page, review queue, call list, report).
"""

import importlib

_BLUEPRINT_MODULES = ("register_views", "api", "check_public", "check_views", "privacy")


def init_app(app) -> None:
    """Register this package's blueprints, scheduled jobs and SMS reply handler, its audited
    models, retention rules and demo data."""
    from contacts import check_models, demo, models, retention
    from core.audit import track
    from core.demo import register_loader

    for name in _BLUEPRINT_MODULES:
        module = importlib.import_module(f"contacts.{name}")
        blueprint = getattr(module, "bp", None)
        if blueprint is not None:
            app.register_blueprint(blueprint)
        init = getattr(module, "init_app", None)
        if init is not None:
            init(app)
    from core import link_pages

    link_pages.register_pages(app, blueprints={"check_public"})
    importlib.import_module("contacts.checks")  # planners, task handlers, the JA/NEJ handler
    track(models.ContactPerson, "contact")
    track(models.Provider, "provider")
    track(check_models.CheckRecipient, "check_recipient")
    track(check_models.CheckCorrection, "check_correction")
    retention.init_app(app)  # gallring of the monthly check's rows
    register_loader(app, demo.load)  # the demo providers and contacts
