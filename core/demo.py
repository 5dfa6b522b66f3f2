"""``flask demo load``: clearly fictional demo data for trying the service locally.

Phone numbers are from the range the Swedish regulator (PTS) reserves for fiction
(070-174 06 05 … 070-174 06 99), e-mail addresses use example.se, and organisation numbers are
invented. Loading twice changes nothing. Refused in production.

Disruptions (issue 5): two suppliers (Telia, with an address for notices and estimates, and
Careium), the on-call roster with the demo officer (``tib``, with a demo e-mail and mobile) as its
only member, and one open incident — an unplanned GSM outage affecting every provider of camera
supervision — received as a forwarded e-mail, on its timeline and routed like any other.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from accounts.models import User
from accounts.roles import Role
from accounts.service import create_user
from core.clock import current_clock
from core.extensions import db

demo_cli = AppGroup("demo", help="Demo data for local use.")

DEMO_USERS = (
    ("admin", "Ada Admin (demo)", Role.ADMIN, "demo-admin-lösenord"),
    ("team", "Tea Teamsson (demo)", Role.TEAM, "demo-team-lösenord"),
    ("tib", "Tor I Beredskap (demo)", Role.ON_CALL, "demo-tib-lösenord"),
    ("larm", "Lars Larmoperatör (demo)", Role.ALARM_OPERATOR, "demo-larm-lösenord"),
)

DEMO_PROVIDERS = (
    (
        "Hemtjänst Exempelstad Norr (demo)",
        "212000-0001",
        "municipal",
        (
            ("Karin Exempelsson", "Enhetschef", "+46701740605", "karin.norr@example.se"),
            ("Omar Demosson", "Samordnare natt", "+46701740606", "omar.norr@example.se"),
        ),
    ),
    (
        "Omsorgsbolaget Fiktiv AB (demo)",
        "559999-0206",
        "private",
        (("Lena Påhittad", "Verksamhetschef", "+46701740607", "lena@omsorgsbolaget.example.se"),),
    ),
    (
        "Trygg Vardag Demo AB (demo)",
        "559999-0305",
        "private",
        (("Åsa Övningsdotter", "Kvalitetsansvarig", "+46701740608", "asa@tryggvardag.example.se"),),
    ),
)


DEMO_SUPPLIERS = (("Telia", "driftinfo@telia.example.se"), ("Careium", None))
# How the on-call officer is alerted (fictional: PTS's range for fiction, example.se).
DEMO_STAFF_CONTACTS = {"tib": ("tib@kommun.example.se", "+46701740609")}
DEMO_ROSTER = ("tib",)
DEMO_NOTICE_ID = "<demo-gsm-avbrott@telia.example.se>"
DEMO_INCIDENT_TITLE = "GSM-nätet nere: kameratillsynen når inte routrarna (demo)"
DEMO_NOTICE_BODY = (
    "Vi har ett oplanerat avbrott i mobilnätet (GSM) i kommunens norra delar. "
    "Routrar för kameratillsyn kan sakna kontakt. Felsökning pågår; beräknat klart om cirka tre timmar."
)


def load_demo_data() -> list[tuple[str, str, str]]:
    """Create the demo users and providers that do not exist yet; returns (user, role, password).

    Providers and contacts go through the register's rules (``contacts.register``) as the
    source ``demo``, so they have a history like any other record."""
    from contacts import register

    now = current_clock().now()
    actor = register.Actor("demo")
    created = []
    for username, name, role, password in DEMO_USERS:
        if db.session.scalar(select(User).where(User.username == username)) is None:
            create_user(
                db_session=db.session, username=username, display_name=name, role=role, now=now, password=password
            )
        created.append((username, role.value, password))
    for name, org, kind, contacts in DEMO_PROVIDERS:
        if register.find_provider_by_name(db.session, name) is not None:
            continue
        provider = register.create_provider(
            db.session, {"name": name, "organisation_number": org, "kind": kind}, actor=actor, now=now
        ).record
        for person, title, mobile, email in contacts:
            register.create_contact(
                db.session,
                provider,
                {
                    "name": person,
                    "role_title": title,
                    "mobile": mobile,
                    "email": email,
                    "services": ["camera_supervision", "alarms"],
                },
                actor=actor,
                now=now,
            )
    _load_crisis_demo(now)
    _load_supervision_demo(now)
    db.session.commit()
    return created


DEMO_CLIENTS_PER_PROVIDER = 3
DEMO_SUPERVISION_TIMES = tuple(f"{hour:02d}:30" for hour in range(24))  # hourly, so the demo always has some


def _load_supervision_demo(now) -> None:
    """Camera-supervised clients (pseudonymous references, area "Ryd") of the first two demo
    providers, supervised every hour at half past, each only if missing. The demo incident's
    window (its start to its expected end) then turns their supervisions into visits at the
    scheduler's next tick, with the providers alerted in the console outbox."""
    from contacts import register
    from crisis.visits.models import SupervisedClient, SupervisionSchedule

    for name, _org, _kind, _contacts in DEMO_PROVIDERS[:2]:
        provider = register.find_provider_by_name(db.session, name)
        if provider is None:
            continue
        for number in range(1, DEMO_CLIENTS_PER_PROVIDER + 1):
            reference = f"DEMO-{provider.id}-{number}"
            if db.session.scalar(select(SupervisedClient.id).where(SupervisedClient.reference == reference)):
                continue
            client = SupervisedClient(
                reference=reference, provider_id=provider.id, area="Ryd", is_active=True, created_at=now
            )
            client.schedules = [
                SupervisionSchedule(weekdays=list(range(7)), local_time=moment) for moment in DEMO_SUPERVISION_TIMES
            ]
            db.session.add(client)


def _load_crisis_demo(now) -> None:
    """Suppliers, the roster and one open incident, each only if missing (see the module docstring)."""
    from datetime import timedelta

    from crisis.incidents import routing, timeline
    from crisis.incidents.models import Incident, Notice, NoticeSource, Supplier
    from crisis.oncall.models import Party, RosterMember

    suppliers = {}
    for name, email in DEMO_SUPPLIERS:
        supplier = db.session.scalar(select(Supplier).where(Supplier.name == name))
        if supplier is None:
            supplier = Supplier(name=name, email=email, is_active=True, created_at=now)
            db.session.add(supplier)
        suppliers[name] = supplier
    for username, (email, mobile) in DEMO_STAFF_CONTACTS.items():
        user = db.session.scalar(select(User).where(User.username == username))
        if user is not None:  # fill in only what is missing: an edited address is kept
            user.email = user.email or email
            user.mobile = user.mobile or mobile
    if db.session.scalar(select(RosterMember.id).limit(1)) is None:
        for position, username in enumerate(DEMO_ROSTER):
            user = db.session.scalar(select(User).where(User.username == username))
            db.session.add(RosterMember(user_id=user.id, position=position, is_active=True))
    db.session.flush()

    if db.session.scalar(select(Notice.id).where(Notice.external_id == DEMO_NOTICE_ID)) is not None:
        return
    telia = suppliers["Telia"]
    subject = "Driftstörning: GSM-avbrott, kameratillsyn påverkas (demo)"
    original = (
        "From: Telia driftinformation <driftinfo@telia.example.se>\r\n"
        "To: valfardsteknik@kommun.example.se\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {DEMO_NOTICE_ID}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{DEMO_NOTICE_BODY}\r\n"
    )
    incident = Incident(
        title=DEMO_INCIDENT_TITLE,
        service="camera_supervision",
        supplier_id=telia.id,
        planned=False,
        starts_at=now - timedelta(minutes=15),
        expected_end_at=now + timedelta(hours=3),
        all_providers=True,
        party=Party.TEAM.value,  # route_incident decides by the calendar below
        party_since=now,
        created_at=now,
    )
    db.session.add(incident)
    db.session.flush()
    notice = Notice(
        incident_id=incident.id,
        source=NoticeSource.EMAIL.value,
        supplier_id=telia.id,
        external_id=DEMO_NOTICE_ID,
        subject=subject,
        body=DEMO_NOTICE_BODY,
        original=original,
        original_type="message/rfc822",
        received_at=now,
    )
    db.session.add(notice)
    db.session.flush()
    timeline.record(db.session, incident.id, "notice_received", now, notice_id=notice.id, source=notice.source)
    routing.route_incident(db.session, incident, now)


@demo_cli.command("load")
def load_command() -> None:
    """Load fictional providers, contacts and users (with printed demo passwords)."""
    if current_app.extensions["krisrutin.settings"].is_production:
        raise click.UsageError("demo data is not loaded in production")
    users = load_demo_data()
    click.echo("Demo data loaded. Log in at http://127.0.0.1:5000/login with:")
    for username, role, password in users:
        click.echo(f"  {username:<6} {role:<15} {password}")


def init_app(app) -> None:
    app.cli.add_command(demo_cli)
