"""Disruptions (driftstörningar): from the supplier's notice to the resolution letter.

Rooms: ``models`` (suppliers, notices, incidents, the timeline, letters, receipts),
``timeline`` (every step of an incident), ``intake`` and ``email_ingest`` (a notice from the form,
the API or an e-mail becomes an incident), ``routing`` and ``handover`` (an incident's way to the
responsible party, built on :mod:`crisis.oncall`), ``affected`` (providers and contacts reached),
``acknowledging`` (alerts answered by an SMS reply or a call: reminders, the timeline's steps),
``letters`` and ``letter_jobs`` (letters, updates, receipts, re-sending and the call list),
``followups`` (timed reminders while an incident is open), ``mailbox`` and ``mail_triage`` (the
supplier mailbox read over IMAP, and the messages staff judge), and the HTTP rooms: ``views`` (the
incident list and page), ``notice_views``, ``api`` (``/api/v1/notices``), ``supplier_views``,
``letter_views``, ``provider_page`` (``/d/<token>``), ``export`` and ``report``.

What the incident page shows about camera-supervision visits reaches it through the timeline
(``visits_created`` and the like); this package never imports :mod:`crisis.visits`.
"""


def init_app(app) -> None:
    """Register the blueprints, the CLI, the scheduled jobs and the link pages of incidents, its
    audited model, retention rules, part of an erasure and demo data."""
    from contacts.privacy import register_erasure
    from core import link_pages
    from core.audit import track
    from core.demo import register_loader
    from core.openapi import register_api_area
    from core.todo import register_todo
    from notifications.references import register_reference
    from scheduling.registry import default_registry

    # isort: split
    # The scheduled work registers itself as these are imported, in this order (the planners run in
    # it): routing (escalation), handover (its planner before the follow-ups'), letter_jobs (a big
    # letter's rest, re-send, call list), followups (update reminders, estimates, planned work).
    from crisis.incidents import routing, handover, letter_jobs, followups, mailbox  # isort: skip

    # isort: split
    from crisis.incidents import (
        acknowledging,
        api,
        demo,
        email_ingest,
        export,
        letter_views,
        mail_triage,
        models,
        notice_views,
        openapi,
        privacy,
        provider_page,
        receipt_answers,
        report,
        retention,
        supplier_views,
        todo,
        views,
    )

    for blueprint in (
        notice_views.bp,
        api.bp,
        supplier_views.bp,
        routing.bp,
        handover.bp,
        letter_views.bp,
        provider_page.bp,
        views.bp,
        export.bp,
        report.bp,
        mail_triage.bp,
    ):
        app.register_blueprint(blueprint)
    email_ingest.init_app(app)  # notices ingest FILE.eml
    mailbox.init_app(app)  # mailbox poll|run, and the start-up line saying whether it is read
    letter_views.init_app(app)  # the letters panel of the incident page
    receipt_answers.init_app(app)  # the provider's answer about local routines, in words
    routing.init_app(app)  # the routing panel of the incident page; taking an incident by SMS reply
    handover.init_app(app)  # acknowledging a handover by SMS reply
    acknowledging.init_app(app)  # reminders acknowledged by SMS reply; alert events on the timeline
    default_registry.expect_jobs(routing, handover, letter_jobs, followups, mailbox)
    link_pages.register_pages(app, blueprints={provider_page.bp.name})
    register_api_area(app, openapi.api_area())
    track(models.LetterReceipt, "letter_receipt")
    retention.init_app(app)  # gallring of closed incidents' receipts and notices
    register_erasure(app, privacy.erasure)  # a contact's name on their provider's receipts
    register_loader(app, demo.load)  # the suppliers and the demo incident
    register_todo(app, todo.items)  # the start page: incidents and handovers to take, letters to chase
    register_todo(app, mail_triage.todo_items)  # inbound e-mail to judge
    register_reference(app, views.LETTER_REF, views.describe_letter)  # "Gäller" on the deliveries page
