"""Shared by the audit-log tests: a world in which every page that shows personal data has
something to show (a register, an open monthly check, a letter, a visit alert, a notice's original
e-mail, a roster member), the people who may open them, and the signed links that were sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from accounts.models import User
from contacts.check_links import link_token as check_token
from core.audit import AuditEntry
from core.extensions import db
from crisis.incidents.letters import link_token as letter_token
from crisis.incidents.models import InboundEmail, LetterReceipt, Notice
from crisis.oncall.views import feed_token
from crisis.visits.models import VisitAlert
from crisis.visits.service import link_token as visit_token
from tests.conftest import TEST_SECRET, log_in
from tests.contacts.test_checks_helpers import recipient_of, run_tick
from tests.crisis.incidents.test_letters_provider_page import _send as send_letter
from tests.crisis.visits.test_visit_helpers import (
    NORR,
    TUESDAY,
    local,
    make_incident,
    make_people,
    new_visits,
    on_call_officer,
    provider_id,
    provider_user,
)

NIGHT = local(TUESDAY, 22, 50)
MONTH = "2026-11"
# Values of the people in the world: none of them may appear in the audit log or on a page
# reached through a path taken from it.
PERSONAL = ("Anna Lind", "+46701000001", "anna@norr.se", "Cia Berg", "+46701000003", "cia@soder.se", "Per Persson")


@dataclass
class World:
    contact_id: int
    provider_id: int
    incident_id: int
    notice_id: int
    letter_id: int
    recipient_id: int  # Anna's in November's check
    links: dict[str, str] = field(default_factory=dict)  # kind -> path with the full token
    admin: object = None  # a logged-in admin's client
    provider: object = None  # a logged-in provider user's client (Hemtjänst Norr)
    token: str = ""  # a team member's API token

    @property
    def api(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


def build_world(app, clock, make_user, make_token) -> World:
    """The world at Tuesday 24 November 2026, 22:50 (Stockholm): two providers with contacts,
    invited to November's check by the tick on the 2nd, an open incident with a first letter, a
    notice received as e-mail, two visits of Hemtjänst Norr due in the night (alerted)."""
    clock.set(local(date(2026, 11, 2), 7))
    with app.app_context():
        contacts = make_people(clock)
        db.session.remove()
    run_tick(app, clock, local(date(2026, 11, 2), 8))
    clock.set(NIGHT)
    on_call_officer(app, make_user)
    with app.app_context():
        incident_id = make_incident(clock)
        notice = Notice(
            incident_id=incident_id,
            source="email",
            subject="Avbrott i GSM-nätet",
            body="Avbrott i natt.",
            original="From: Per Persson <per@telia.example>\r\nSubject: Avbrott\r\n\r\nAvbrott i natt.",
            original_type="message/rfc822",
            received_at=clock.now(),
        )
        db.session.add(notice)
        # A message of the supplier mailbox waiting in the triage list (/incidents/mail).
        db.session.add(
            InboundEmail(
                mailbox_key="INBOX:1:1",
                message_id="<fraga@example.org>",
                sender="per@example.org",
                subject="Fråga om kamerorna",
                received_at=clock.now(),
                size=70,
                raw=b"From: Per Persson <per@example.org>\r\nSubject: Fraga\r\n\r\nFungerar kamerorna?\r\n",
                status="triage",
                reason="unknown_sender",
            )
        )
        db.session.commit()
        letter_id = send_letter(incident_id, clock)
        new_visits(clock, NORR, [local(TUESDAY, 23, 0), local(TUESDAY, 23, 30)])
        norr = provider_id(NORR)
        receipt = db.session.scalars(
            select(LetterReceipt).where(LetterReceipt.letter_id == letter_id, LetterReceipt.provider_id == norr)
        ).one()
        alert = db.session.scalars(select(VisitAlert).order_by(VisitAlert.id)).first()
        officer = db.session.scalars(select(User).where(User.username == "tib")).one()
        world = World(
            contact_id=contacts["anna"],
            provider_id=norr,
            incident_id=incident_id,
            notice_id=notice.id,
            letter_id=letter_id,
            recipient_id=recipient_of(MONTH, contacts["anna"]).id,
            links={
                "letter": f"/d/{letter_token(receipt, TEST_SECRET)}",
                "visit": f"/v/{visit_token(alert, TEST_SECRET)}",
                "check": f"/k/{check_token(recipient_of(MONTH, contacts['anna']), TEST_SECRET)}",
                "feed": f"/roster/feed/{feed_token(officer)}.ics",
            },
        )
        db.session.remove()
    _, admin_name, _ = make_user("admin")
    world.admin = app.test_client()
    log_in(world.admin, admin_name)
    world.provider = app.test_client()
    log_in(world.provider, provider_user(app, clock, NORR))
    team_id, _, _ = make_user("team")
    world.token = make_token(team_id)
    return world


def audit_rows(app, after_id: int = 0) -> list[AuditEntry]:
    """The audit log's rows after ``after_id``, oldest first, detached."""
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.id > after_id).order_by(AuditEntry.id)).all()
        db.session.expunge_all()
        db.session.remove()
        return rows


def last_audit_id(app) -> int:
    rows = audit_rows(app)
    return rows[-1].id if rows else 0
