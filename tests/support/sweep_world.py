"""The world tests/test_route_sweep.py walks the URL map in: one of every row a path can name,
a logged-in client of every staff role, the supplier's API token, and a fingerprint of every
table to tell whether a request changed anything.

The world is built once per module and database (a fixed clock: Monday 23 November 2026, 10:00
in Stockholm, office hours, November's check open), through the same service functions the
application uses.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy import select

from core.extensions import db
from tests.conftest import DEFAULT_PASSWORD, csrf_token_from, log_in

BASE_URL = "https://krisrutin.kommun.example.se"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
SETTINGS = {
    "PUBLIC_BASE_URL": BASE_URL,
    "TEAM_EMAIL": "valfardsteknik@kommun.example.se",
    "TEAM_MOBILE": "+46701999999",
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
}
SESSION_ROLES = ("admin", "team", "on_call", "provider", "alarm_operator")
ROLES = (*SESSION_ROLES, "supplier", "anonymous")

# Rows that record the attempt itself, not a change by it: every refused link adds a
# link_failures row, every refused login a login_failures row, and the audit log records views
# and refusals. A token's last_used_at is stamped whenever it authenticates, a login session's
# last_seen_at as it is used, and a wrong current password counts towards the user's lock-out.
ATTEMPT_TABLES = ("audit_log", "link_failures", "login_failures")
ATTEMPT_COLUMNS = {
    ("api_tokens", "last_used_at"),
    ("user_sessions", "last_seen_at"),
    ("users", "failed_logins"),
    ("users", "first_failed_at"),
    ("users", "locked_until"),
}


@dataclass
class World:
    app: object
    clients: dict = field(default_factory=dict)  # role -> test client (anonymous too)
    csrf: dict = field(default_factory=dict)  # role -> its session's CSRF token
    supplier_token: str = ""
    path_values: dict = field(default_factory=dict)  # path argument -> a value naming a row
    links: dict = field(default_factory=dict)  # "k", "d", "v", "feed" -> a valid token
    _addresses: itertools.count = field(default_factory=lambda: itertools.count(1))
    _statement: str = ""

    def next_address(self) -> str:
        """A client address of its own for each request: the link and login limits count
        failures per address, and the sweep must reach the pages, not their 429."""
        n = next(self._addresses)
        return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"

    def fingerprint(self) -> dict[str, str]:
        """Every table's rows (but the attempt records above), as a digest per table."""
        with self.app.app_context():
            rows = db.session.execute(sa.text(self._statement)).all()
            db.session.remove()
        return {name: hashlib.sha256((text or "").encode("utf-8", "surrogatepass")).hexdigest() for name, text in rows}


def _fingerprint_statement(app) -> str:
    with app.app_context():
        engine = db.engine
        inspector = sa.inspect(engine)
        parts = []
        for table in sorted(inspector.get_table_names()):
            if table in ATTEMPT_TABLES:
                continue
            columns = [c["name"] for c in inspector.get_columns(table) if (table, c["name"]) not in ATTEMPT_COLUMNS]
            if engine.dialect.name == "sqlite":
                row = " || ',' || ".join(f'quote("{c}")' for c in columns)
                parts.append(
                    f"SELECT '{table}', (SELECT group_concat(r, char(10)) FROM "
                    f'(SELECT {row} AS r FROM "{table}" ORDER BY 1))'
                )
            else:
                row = ", ".join(f'quote_nullable("{c}"::text)' for c in columns)
                parts.append(
                    f"SELECT '{table}', (SELECT string_agg(r, E'\\n' ORDER BY r) FROM "
                    f"(SELECT concat_ws(',', {row}) AS r FROM \"{table}\") AS s)"
                )
        db.session.remove()
    return "\nUNION ALL\n".join(parts)


def build_world(app, clock) -> World:
    """Seed the world in ``app`` (a migrated, empty database) and log every role in."""
    from accounts.models import User
    from accounts.service import create_token, create_user
    from contacts import check_links
    from contacts.check_models import CheckCorrection, CheckRecipient
    from contacts.models import ContactPerson, Provider
    from crisis.incidents import letters
    from crisis.incidents.intake import create_notice
    from crisis.incidents.models import InboundEmail, Incident, LetterKind, LetterReceipt, NoticeSource, Supplier
    from crisis.oncall.models import Handover, RosterMember, RosterOverride
    from crisis.oncall.views import feed_token
    from crisis.visits import service as visits
    from crisis.visits.models import SupervisedClient, Visit, VisitAlert
    from scheduling.service import tick
    from tests.crisis.incidents.test_letters_helpers import local, make_people
    from tests.crisis.visits.test_visit_helpers import new_visits

    world = World(app=app)
    secret = app.config["SECRET_KEY"]
    with app.app_context():
        clock.set(local(date(2026, 10, 28), 9))
        people = make_people(clock)
        tick(db_session=db.session, now=local(date(2026, 11, 2), 9))  # November's check goes out
        db.session.commit()
        clock.set(local(date(2026, 11, 23), 10))
        now = clock.now()
        norr = db.session.get(ContactPerson, people["anna"]).provider_id
        users = {}
        for role in ROLES[:-1]:
            user = create_user(
                db_session=db.session,
                username=f"sweep-{role.replace('_', '-')}",
                display_name=f"Sweep {role}",
                role=role,
                now=now,
                password=DEFAULT_PASSWORD,
                provider_id=norr if role == "provider" else None,
            )
            db.session.flush()
            users[role] = user
        telia = Supplier(name="Telia", email="drift@telia.se", is_active=True, created_at=now)
        telia.user_id = users["supplier"].id
        db.session.add(telia)
        token, world.supplier_token = create_token(db_session=db.session, user=users["supplier"], name="sweep", now=now)
        member = RosterMember(user_id=users["on_call"].id, position=0, is_active=True)
        db.session.add(member)
        override = RosterOverride(
            user_id=users["team"].id,
            starts_at=now + timedelta(days=1),
            ends_at=now + timedelta(days=2),
            reason="byte",
            created_by_id=users["team"].id,
            created_at=now,
        )
        db.session.add(override)
        db.session.flush()
        notice, _ = create_notice(
            db.session,
            {"title": "GSM-störning", "body": "Telia ringde.", "service": "camera_supervision", "providers": "all"},
            source=NoticeSource.FORM,
            now=now,
            original='{"title": "GSM-störning"}',
            original_type="application/json",
        )
        incident = db.session.get(Incident, notice.incident_id)
        incident.supplier_id = notice.supplier_id = telia.id  # the supplier's own notice
        letters.send_letter(
            db.session,
            incident,
            kind=LetterKind.FIRST,
            subject="Störning i kameratillsynen",
            body="Kameratillsynen ligger nere.",
            apply_local_routines=True,
            author_id=users["team"].id,
            party="team",
            now=now,
        )
        handover = Handover(
            incident_id=incident.id, boundary_at=now, from_party="on_call", to_party="team", summary={}, created_at=now
        )
        db.session.add(handover)
        db.session.commit()
        new_visits(clock, "Hemtjänst Norr", [now + timedelta(hours=1)], incident_id=incident.id)
        recipient = db.session.scalars(select(CheckRecipient).where(CheckRecipient.contact_id == people["anna"])).one()
        correction = CheckCorrection(
            recipient_id=recipient.id,
            kind="correction",
            contact_id=people["anna"],
            provider_id=norr,
            proposed={"name": "Anna Lind-Berg"},
            comment="",
            status="pending",
            submitted_at=now,
            submitted_via="link",
        )
        db.session.add(correction)
        db.session.commit()
        # A message of the supplier mailbox waiting in the triage list.
        inbound = InboundEmail(
            mailbox_key="INBOX:1:1",
            message_id="<sweep@example.org>",
            sender="nagon@example.org",
            subject="Störning?",
            received_at=now,
            size=60,
            raw=b"From: nagon@example.org\r\nSubject: Storning?\r\n\r\nHej\r\n",
            status="triage",
            reason="unknown_sender",
        )
        db.session.add(inbound)
        db.session.commit()
        receipt = db.session.scalars(select(LetterReceipt).where(LetterReceipt.provider_id == norr)).first()
        alert = db.session.scalars(select(VisitAlert)).first()
        client = db.session.scalars(select(SupervisedClient)).first()
        world.path_values = {
            "alert_id": alert.id,
            "contact_id": people["anna"],
            "correction_id": correction.id,
            "handover_id": handover.id,
            "incident_id": incident.id,
            "member_id": member.id,
            "message_id": inbound.id,
            "month": "2026-11",
            "notice_id": notice.id,
            "override_id": override.id,
            "provider_id": norr,
            "receipt_id": receipt.id,
            "recipient_id": recipient.id,
            "ref_id": str(incident.id),
            "ref_type": "incident",
            "reference": client.reference,
            "supplier_id": telia.id,
            "token_id": token.id,
            "filename": "style.css",
            # not path arguments: ids the sweep's fixed form values name
            "on_call_user": users["on_call"].id,
            "visit_id": db.session.scalars(select(Visit.id)).first(),
        }
        world.links = {
            "k": check_links.link_token(recipient, secret),
            "d": letters.link_token(receipt, secret),
            "v": visits.link_token(alert, secret),
            "feed": feed_token(db.session.get(User, users["on_call"].id)),
        }
        assert db.session.get(Provider, norr).is_active
        db.session.remove()
    for role in ROLES:
        client = app.test_client()
        if role in SESSION_ROLES:
            assert log_in(client, f"sweep-{role.replace('_', '-')}").status_code == 302
        world.clients[role] = client
        if role != "supplier":
            page = client.get("/account/totp" if role in SESSION_ROLES else "/login")
            world.csrf[role] = csrf_token_from(page.get_data(as_text=True))
    world._statement = _fingerprint_statement(app)
    return world
