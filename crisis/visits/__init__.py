"""Camera supervision (kameratillsyn): when a supervision cannot be done, a physical visit.

Rooms: ``models`` (supervised clients, schedules, failures, visits, alerts, events), ``clients``
and ``clients_csv`` (the register of supervised clients and their schedules; API and CSV),
``supervision`` (failures and outages become visits), ``service`` (alerting providers, their
acknowledgement, marking visits, call records), ``jobs`` (escalation of unacknowledged alerts and
overdue visits: staff alerts to the responsible party), ``acknowledge`` (those staff alerts
answered by an SMS reply), and the HTTP rooms: ``api`` (``/api/v1/supervision``), ``provider_page``
(``/v/<token>``), ``views`` (the call list and the dashboard) and ``report``.

Visits stand on incidents (an outage's visits are on its timeline) and on on-call (who is
responsible when a provider does not react).
"""


def init_app(app) -> None:
    """Register the blueprints, the CLI, the scheduled jobs and the link pages of visits, its
    audited models, retention rules, part of an erasure and demo data."""
    from contacts.privacy import register_erasure
    from core import link_pages
    from core.audit import track
    from core.demo import register_loader
    from core.openapi import register_api_area
    from core.todo import register_todo
    from notifications.references import register_reference
    from scheduling.registry import default_registry

    # isort: split
    # The scheduled work registers itself as these are imported: supervision (the planner that
    # turns failed supervisions into visits), jobs (escalation, overdue visits).
    from crisis.visits import supervision, jobs  # isort: skip

    # isort: split
    from crisis.visits import (
        acknowledge,
        api,
        clients_csv,
        demo,
        models,
        openapi,
        privacy,
        provider_page,
        references,
        report,
        retention,
        service,
        todo,
        views,
    )

    for blueprint in (api.bp, clients_csv.bp, provider_page.bp, views.bp, report.bp):
        app.register_blueprint(blueprint)
    clients_csv.init_app(app)  # supervision import FILE.csv
    default_registry.expect_jobs(supervision, jobs)
    link_pages.register_pages(app, endpoints={"visit_page.page", "visit_page.mark"})
    register_api_area(app, openapi.api_area())
    track(models.SupervisedClient, "client")
    track(models.Visit, "visit")
    retention.init_app(app)  # gallring of visits, their alerts and events
    register_erasure(app, privacy.erasure)  # a contact's name on their provider's visits
    register_loader(app, demo.load)  # the supervised clients
    register_todo(app, todo.items)  # the start page: overdue visits, providers to phone
    register_reference(app, service.REF_TYPE, references.describe_alert)  # "Gäller" on the deliveries page
    acknowledge.init_app(app)  # the party's alerts (call list, overdue visits) acknowledged by SMS reply
