"""Who is responsible now and how to reach them (the welfare technology team in office hours, the
on-call officer — TIB — outside them).

Rooms: ``models`` (parties, roster, alerts, handovers), ``roster`` (who is on call at an instant,
the backup, the manager, shifts), ``responsible`` (the party the calendar names and its
addresses; whom providers contact), ``alerts`` (alerting one person once per step, the
escalation chain), ``acknowledge`` (acknowledging an alert by the page, an SMS reply or a call;
the domains' acknowledgers and listeners), ``handovers`` (the edges of office hours;
acknowledging a handover), ``views`` (the roster page and the shifts' iCalendar feeds), ``demo``
(the demo roster).

This layer knows people, parties and alerts, not what they are alerted about: an alert carries
an incident's id and a message the caller renders. The flows that route, escalate and hand over
an incident are :mod:`crisis.incidents.routing` and :mod:`crisis.incidents.handover`.
"""


def init_app(app) -> None:
    """Register the roster pages, the officer's contact on the calendar API, whom core's pages
    name (error and link pages) and the demo roster."""
    from core.contact_now import register_lookup
    from core.demo import register_loader
    from core.todo import register_todo
    from crisis.oncall import demo, models, responsible, todo, views  # noqa: F401  (models: tables known to migrations)
    from worktime.views import register_officer_contact

    app.register_blueprint(views.bp)
    register_officer_contact(app, responsible.officer_contact)  # /api/v1/calendar/responsible
    register_lookup(app, responsible.contact_details)  # error pages, expired and limited links
    register_loader(app, demo.load)  # the demo officer's addresses, the roster
    register_todo(app, todo.items)  # the start page: who is on call, or that nobody can be alerted
