"""The crisis work, in three domains that build on each other:

- :mod:`crisis.oncall` — who is responsible now and how to reach them: the roster, the parties,
  staff alerts and their escalation chain, handover at the edges of office hours;
- :mod:`crisis.incidents` — disruptions (driftstörningar): notices in, routing, letters and
  updates to the providers, their receipts, follow-ups, the incident record;
- :mod:`crisis.visits` — camera supervision: supervised clients and schedules, failed
  supervisions as physical visits, the provider's visit page, escalation, reports.

Each stands only on those before it (visits may use incidents; incidents never import visits).
:mod:`crisis.links` stands above all three: renewing a signed link of any kind.
"""


def init_app(app) -> None:
    """Register the three domains (in their layers' order) and the link renewal."""
    from crisis import incidents, links, oncall, visits

    oncall.init_app(app)
    incidents.init_app(app)
    visits.init_app(app)
    app.register_blueprint(links.bp)
