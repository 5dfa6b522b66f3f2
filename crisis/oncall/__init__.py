"""Who is responsible now and how to reach them (the welfare technology team in office hours, the
on-call officer — TIB — outside them).

Rooms: ``models`` (parties, roster, alerts, handovers), ``roster`` (who is on call at an instant,
the backup, the manager, shifts), ``responsible`` (the party the calendar names and its
addresses; whom providers contact), ``alerts`` (alerting one person once per step, the
escalation chain), ``paging`` (reaching a person step by step until they acknowledge: personal
rules, reminders and calls), ``rules_views`` ("Mina larmregler", the test SMS and call),
``acknowledge`` (acknowledging an alert by the page, an SMS reply or a call; the domains'
acknowledgers and listeners), ``sms_replies`` (a staff member's SMS reply "1" acknowledges their
newest open alert: the inbound handlers asked before the contact lookup), ``handovers`` (the edges
of office hours; acknowledging a handover), ``views`` (the roster page and the shifts' iCalendar
feeds), ``demo`` (the demo roster).

This layer knows people, parties and alerts, not what they are alerted about: an alert carries
an incident's id (or, without an incident, a subject named by type and id) and a message the
caller renders. The flows that route, escalate and hand over
an incident are :mod:`crisis.incidents.routing` and :mod:`crisis.incidents.handover`.
"""


def init_app(app) -> None:
    """Register the roster pages, the officer's contact on the calendar API, whom core's pages
    name (error and link pages), the demo roster, the paging rules and the answers to a paging call,
    and the inbound SMS handlers that acknowledge alerts by reply (asked before the contact-person
    lookup; they register as sms_replies is imported)."""
    from core.audit import track
    from core.contact_now import register_lookup
    from core.demo import register_loader
    from core.todo import register_todo
    from crisis.oncall import demo, models, paging, responsible, rules_views, sms_replies, todo, views  # noqa: F401  (sms_replies: handlers)
    from notifications.voice import register_call_status_handler, register_keypress_handler
    from scheduling.registry import default_registry
    from worktime.views import register_officer_contact

    app.register_blueprint(views.bp)
    app.register_blueprint(rules_views.bp)  # /account/alerting, the roster's test SMS and call
    default_registry.expect_jobs(paging)  # oncall.page: the later steps of an unacknowledged alert
    track(models.PagingStep, "paging_step")  # a person's own paging rules
    # the call transport's answers to a paging call (ref "alert"): a key pressed, the call's outcome
    register_keypress_handler(app, "alert", paging.on_keypress)
    register_call_status_handler(app, "alert", paging.on_call_status)
    register_officer_contact(app, responsible.officer_contact)  # /api/v1/calendar/responsible
    register_lookup(app, responsible.contact_details)  # error pages, expired and limited links
    register_loader(app, demo.load)  # the demo officer's addresses, the roster
    register_todo(app, todo.items)  # the start page: who is on call, or that nobody can be alerted
