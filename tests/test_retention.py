"""Gallring: personal data older than each retention period is cleared, nothing newer; the run
is recorded, idempotent, scheduled once per local day at 03:00, and a dry run changes nothing."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contacts.check_models import CheckCorrection, CheckRecipient, MonthlyCheck
from core.extensions import db
from core.retention import Clearing, RetentionRun, months_before, register_clearing, register_deletion, run_retention
from crisis.incidents.models import Incident, Letter, LetterReceipt, Notice
from crisis.visits.models import SupervisedClient, SupervisionFailure, Visit, VisitAlert, VisitEvent
from notifications.models import InboundSms, Message
from scheduling.models import ScheduledTask
from scheduling.service import tick
from tests.contacts.test_checks_helpers import make_register

STOCKHOLM = ZoneInfo("Europe/Stockholm")
NOW = datetime(2030, 6, 15, 12, 0, tzinfo=STOCKHOLM)


def ago(**kw) -> datetime:
    if "months" in kw:
        return months_before(NOW, kw.pop("months")) - timedelta(**kw)
    return NOW - timedelta(**kw)


def _message(key, contact_id, created, status="delivered"):
    return Message(
        idempotency_key=key,
        kind="contacts.check_link",
        channel="sms",
        priority=1,
        contact_id=contact_id,
        to_address="+46701000001",
        subject="Ämne",
        body_text="Hej Anna, svara JA",
        body_html="<p>Hej</p>",
        status=status,
        attempts=1,
        next_attempt_at=created,
        created_at=created,
        updated_at=created,
    )


def _incident(title, *, status, closed_at):
    return Incident(
        title=title,
        service="trygghetslarm",
        planned=False,
        all_providers=True,
        party="team",
        party_since=closed_at,
        status=status,
        resolved_at=closed_at if status == "resolved" else None,
        created_at=closed_at - timedelta(hours=5),
        updated_at=closed_at,
    )


def build(clock):
    """Rows on both sides of every period: an ``old`` and a ``new`` one of each kind."""
    clock.set(ago(months=40))
    ids = make_register(
        clock,
        {
            "anna": {"provider": "Hemtjänst Norr", "name": "Anna Lind", "mobile": "+46701000001"},
            "bo": {"provider": "Hemtjänst Norr", "name": "Bo Ek", "email": "bo@norr.se"},
        },
    )
    provider_id = db.session.get(__import__("contacts.models").models.ContactPerson, ids["anna"]).provider_id
    rows: dict[str, object] = {}

    check = MonthlyCheck(
        month="2027-01",
        send_on=date(2027, 1, 1),
        first_reminder_on=date(2027, 1, 4),
        second_reminder_on=date(2027, 1, 5),
        call_on=date(2027, 1, 6),
        opened_at=ago(months=30),
        closes_at=ago(months=29),
        created_at=ago(months=30),
    )
    db.session.add(check)
    db.session.flush()
    for name, when in (("old", ago(months=24, days=1)), ("new", ago(months=24) + timedelta(days=1))):
        contact = ids["anna"] if name == "old" else ids["bo"]
        recipient = CheckRecipient(
            check_id=check.id,
            contact_id=contact,
            provider_id=provider_id,
            added_at=when,
            added_reason="start",
            nonce="n" + name,
            answer="no",
            answered_at=when,
            answered_via="call",
            call_note="Anna säger att numret är fel",
            called_at=when,
        )
        db.session.add(recipient)
        db.session.flush()
        rows[f"recipient_{name}"] = recipient
        correction = CheckCorrection(
            recipient_id=recipient.id,
            kind="correction",
            contact_id=contact,
            provider_id=provider_id,
            proposed={"mobile": "+46709999999"},
            comment="Ny telefon",
            status="applied",
            submitted_at=when,
            submitted_via="link",
        )
        db.session.add(correction)
        rows[f"correction_{name}"] = correction

    for name, when, status in (
        ("old", ago(months=36, days=1), "resolved"),
        ("new", ago(months=36) + timedelta(days=1), "not_relevant"),
        ("open", ago(months=50), "letters_sent"),
    ):
        incident = _incident(f"Störning {name}", status=status, closed_at=when)
        db.session.add(incident)
        db.session.flush()
        notice = Notice(
            incident_id=incident.id,
            source="email",
            subject="Avbrott",
            body="Text",
            original="From: leverantor@example.se\n\nHälsningar Per",
            original_type="message/rfc822",
            received_at=incident.created_at,
        )
        letter = Letter(
            incident_id=incident.id,
            number=1,
            kind="first",
            party="team",
            subject="Störning",
            body="Brev",
            sent_at=incident.created_at,
        )
        db.session.add_all([notice, letter])
        db.session.flush()
        receipt = LetterReceipt(
            letter_id=letter.id,
            provider_id=provider_id,
            nonce="r" + name,
            acknowledged_at=incident.created_at,
            acknowledged_by="Karin Kvittosson",
            call_outcome="Pratade med Karin",
        )
        db.session.add(receipt)
        rows[f"incident_{name}"] = incident
        rows[f"notice_{name}"] = notice
        rows[f"receipt_{name}"] = receipt

    client = SupervisedClient(reference="K-1", provider_id=provider_id, area="Norr", created_at=ago(months=40))
    db.session.add(client)
    db.session.flush()
    for name, when in (("old", ago(months=24, days=1)), ("new", ago(months=24) + timedelta(days=1))):
        failure = SupervisionFailure(
            client_id=client.id, provider_id=provider_id, scheduled_at=when, source="operator", created_at=when
        )
        db.session.add(failure)
        db.session.flush()
        visit = Visit(
            failure_id=failure.id,
            client_id=client.id,
            provider_id=provider_id,
            due_at=when,
            status="done",
            done_at=when,
            comment="Brukaren mådde bra",
            marked_at=when,
            marked_by="Lisa Besöksson",
            created_at=when,
        )
        db.session.add(visit)
        rows[f"visit_{name}"] = visit
        alert = VisitAlert(
            provider_id=provider_id,
            nonce="a" + name,
            visit_ids=[],
            created_at=when,
            acknowledged_at=when,
            acknowledged_by="Lisa Besöksson",
        )
        event = VisitEvent(at=when, kind="acknowledged", provider_id=provider_id, actor="Lisa Besöksson", detail={})
        db.session.add_all([alert, event])
        rows[f"valert_{name}"] = alert
        rows[f"vevent_{name}"] = event

    rows["message_old"] = _message("m-old", ids["anna"], ago(days=91))
    rows["message_new"] = _message("m-new", ids["anna"], ago(days=89))
    rows["message_queued"] = _message("m-queued", ids["anna"], ago(days=200), status="queued")
    rows["sms_old"] = InboundSms(
        gateway_id="g-old", from_address="+46701000001", body="JA Anna", received_at=ago(days=91)
    )
    rows["sms_new"] = InboundSms(gateway_id="g-new", from_address="+46701000001", body="JA", received_at=ago(days=89))
    db.session.add_all([rows[k] for k in ("message_old", "message_new", "message_queued", "sms_old", "sms_new")])
    db.session.commit()
    return {key: (type(row), row.id) for key, row in rows.items()}


def load(refs, key):
    model, row_id = refs[key]
    return db.session.get(model, row_id)


def snapshot(refs) -> dict:
    db.session.expire_all()
    fields = {
        "recipient": ("call_note", "answer", "answered_at"),
        "correction": ("proposed", "comment", "status"),
        "incident": ("title", "status"),
        "notice": ("original", "subject", "body"),
        "receipt": ("acknowledged_by", "call_outcome", "acknowledged_at"),
        "visit": ("comment", "marked_by", "done_at"),
        "valert": ("acknowledged_by", "acknowledged_at"),
        "vevent": ("actor", "kind"),
        "message": ("body_text", "body_html", "subject", "to_address", "status", "contact_id"),
        "sms": ("body", "from_address", "received_at"),
    }
    return {key: tuple(getattr(load(refs, key), f) for f in fields[key.split("_")[0]]) for key in refs}


def test_retention_clears_exactly_what_is_older_than_each_period_and_is_idempotent(app, clock):
    with app.app_context():
        refs = build(clock)
        before = snapshot(refs)
        clock.set(NOW)
        run = run_retention(db.session, now=clock.now())
        db.session.commit()
        assert run.counts == {
            "check_recipients": 1,
            "check_corrections": 1,
            "letter_receipts": 1,
            "notices": 1,
            "inbound_emails": 0,  # tests/crisis/incidents/test_mail_retention.py
            "visits": 1,
            "visit_alerts": 1,
            "visit_events": 1,
            "messages": 1,
            "inbound_sms": 1,
            "user_sessions": 0,
            "check_records": 0,  # the routine-test record is kept 10 years
            "audit_log": 0,  # the audit log 60 months
        }
        after = snapshot(refs)
        changed = {key for key in refs if after[key] != before[key]}
        assert changed == {
            "recipient_old",
            "correction_old",
            "notice_old",
            "receipt_old",
            "visit_old",
            "valert_old",
            "vevent_old",
            "message_old",
            "sms_old",
        }
        # personal values gone, the record kept
        assert after["recipient_old"] == (None, "no", before["recipient_old"][2])
        assert after["correction_old"] == ({}, "", "applied")
        assert after["notice_old"] == (None, "Avbrott", "Text")
        assert after["receipt_old"] == (None, None, before["receipt_old"][2])
        assert after["visit_old"] == (None, None, before["visit_old"][2])
        assert after["valert_old"] == (None, before["valert_old"][1])
        assert after["vevent_old"] == (None, "acknowledged")
        assert after["message_old"] == ("", None, None, "", "delivered", before["message_old"][5])
        assert after["sms_old"] == ("", "", before["sms_old"][2])
        assert after["incident_old"] == before["incident_old"]  # the timeline and figures stay
        # an open incident and a queued message are never touched, however old
        assert after["receipt_open"] == before["receipt_open"]
        assert after["message_queued"] == before["message_queued"]

        second = run_retention(db.session, now=clock.now())
        db.session.commit()
        assert set(second.counts.values()) == {0}
        assert snapshot(refs) == after
        assert db.session.scalar(select(db.func.count()).select_from(RetentionRun)) == 2


def test_dry_run_counts_but_changes_nothing(app, clock, runner):
    with app.app_context():
        refs = build(clock)
        before = snapshot(refs)
        db.session.remove()
    clock.set(NOW)
    result = runner.invoke(args=["retention", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "messages: 1" in result.output and "dry run" in result.output
    with app.app_context():
        assert snapshot(refs) == before
        run = db.session.scalars(select(RetentionRun)).one()
        assert run.dry_run and run.counts["visits"] == 1
        db.session.remove()
    result = runner.invoke(args=["retention", "run"])
    assert "messages: 1" in result.output
    with app.app_context():
        assert snapshot(refs)["message_old"][0] == ""


SHIPPED_KINDS = [
    "check_recipients",
    "check_corrections",
    "letter_receipts",
    "notices",
    "inbound_emails",
    "visits",
    "visit_alerts",
    "visit_events",
    "messages",
    "inbound_sms",
    "user_sessions",
    "check_records",
    "audit_log",
]


def test_the_command_prints_every_kind_in_the_domains_order(app, clock, runner):
    """Contacts, incidents, visits and notifications register their rules in that order; the
    deletions (accounts' ended sessions, the routine-test record, then the audit log) come last."""
    clock.set(NOW)
    result = runner.invoke(args=["retention", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines == [f"{kind}: 0" for kind in SHIPPED_KINDS] + ["dry run: nothing changed"]


def test_a_kind_a_domain_registers_is_applied_counted_printed_and_shown(app, clock, client, make_user, runner):
    register_clearing(
        app,
        "replies_to_forget",
        "Svar att glömma",
        lambda policy, now: Clearing(InboundSms, InboundSms.body == "glöm mig", {"body": ""}),
    )
    with app.app_context():
        db.session.add(InboundSms(gateway_id="g", from_address="+46701000001", body="glöm mig", received_at=NOW))
        db.session.commit()
    clock.set(NOW)
    result = runner.invoke(args=["retention", "run"])
    assert result.output.splitlines()[9:12] == ["inbound_sms: 0", "replies_to_forget: 1", "user_sessions: 0"]
    with app.app_context():
        assert db.session.scalars(select(InboundSms.body)).one() == ""
        assert db.session.scalars(select(RetentionRun)).one().counts["replies_to_forget"] == 1
        db.session.remove()
    _, admin, password = make_user(role="admin")
    from tests.conftest import log_in

    log_in(client, admin, password)
    html = client.get("/admin/retention/").get_data(as_text=True)
    assert "Svar att glömma" in html


@pytest.mark.parametrize("kind", ["messages", "check_records", "audit_log"])
def test_a_kind_is_registered_once(app, kind):
    def rule(db_session, *, policy, now, dry_run):
        return 0

    with pytest.raises(ValueError, match="registered twice"):
        register_deletion(app, kind, "Igen", rule)


def test_periods_come_from_the_retention_section(make_app, clock, tmp_path):
    from config.settings import DEFAULT_ROUTINE_FILE

    routine = tmp_path / "routine.toml"
    text = DEFAULT_ROUTINE_FILE.read_text(encoding="utf-8").replace("message_days = 90", "message_days = 200")
    routine.write_text(text, encoding="utf-8")
    app = make_app(ROUTINE_FILE=str(routine))
    with app.app_context():
        build(clock)
        clock.set(NOW)
        run = run_retention(db.session, now=clock.now())
        assert run.counts["messages"] == 0 and run.counts["inbound_sms"] == 0
        assert run.counts["visits"] == 1


def _runs(app):
    with app.app_context():
        rows = db.session.scalars(select(RetentionRun).order_by(RetentionRun.id)).all()
        tasks = db.session.scalars(select(ScheduledTask).where(ScheduledTask.kind == "core.retention")).all()
        result = [r.started_at.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M") for r in rows]
        keys = sorted(t.key for t in tasks)
        db.session.remove()
        return result, keys


@pytest.mark.parametrize(
    "night",
    [date(2030, 3, 31), date(2030, 10, 27), date(2030, 6, 10)],
    ids=["spring-forward", "fall-back", "summer"],
)
def test_the_scheduler_runs_retention_once_per_local_day_at_three(app, clock, night):
    """Ticks every 20 minutes from the evening before to the next noon: one run, at 03:00 local
    (also on the nights the clocks change), however many ticks."""
    start = datetime.combine(night - timedelta(days=1), time(18, 0), tzinfo=STOCKHOLM)
    instant = start
    while instant < datetime.combine(night, time(12, 0), tzinfo=STOCKHOLM):
        clock.set(instant)
        with app.app_context():
            tick(db_session=db.session, now=clock.now())
            db.session.remove()
        instant = (instant.astimezone(ZoneInfo("UTC")) + timedelta(minutes=20)).astimezone(STOCKHOLM)
    runs, keys = _runs(app)
    day_before = (night - timedelta(days=1)).isoformat()
    # the first tick (18:00 the day before) runs that day's overdue run at once; then 03:00
    assert runs == [f"{day_before} 18:00", f"{night.isoformat()} 03:00"]
    assert keys == [day_before, night.isoformat()]


def test_admins_see_the_runs_and_periods_and_others_do_not(app, clock, client, make_user, runner):
    from tests.conftest import log_in

    clock.set(NOW)
    runner.invoke(args=["retention", "run", "--dry-run"])
    _, team, password = make_user(role="team")
    log_in(client, team, password)
    assert client.get("/admin/retention/").status_code == 403
    client.post("/logout")
    client2 = app.test_client()
    _, admin, password = make_user(role="admin")
    log_in(client2, admin, password)
    page = client2.get("/admin/retention/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Gallring" in html and "90 dagar" in html and "60 månader" in html
    assert "provkörning" in html and "2030-06-15 12:00" in html


@pytest.mark.parametrize(
    "section, key",
    [
        ({"message_days": 0}, "retention.message_days"),
        ({"check_months": "två år"}, "retention.check_months"),
        ({"run_time": "25:00"}, "retention.run_time"),
        ({"keep_forever": True}, "retention.keep_forever"),
    ],
)
def test_a_bad_retention_setting_names_the_key(section, key):
    import tomllib

    from config.routine import RoutineConfigError, parse_routine
    from config.settings import DEFAULT_ROUTINE_FILE

    data = tomllib.loads(DEFAULT_ROUTINE_FILE.read_text(encoding="utf-8"))
    data["retention"] = section
    with pytest.raises(RoutineConfigError, match=key.replace(".", r"\.")):
        parse_routine(data)


def test_without_a_retention_section_the_defaults_apply():
    import tomllib

    from config.routine import RetentionPolicy, parse_routine
    from config.settings import DEFAULT_ROUTINE_FILE

    data = tomllib.loads(DEFAULT_ROUTINE_FILE.read_text(encoding="utf-8"))
    shipped = parse_routine(data).retention
    del data["retention"]
    assert parse_routine(data).retention == RetentionPolicy() == shipped
    assert (shipped.check_months, shipped.incident_months, shipped.message_days, shipped.audit_months) == (
        24,
        36,
        90,
        60,
    )


def _audit_entry(at, action="view"):
    from core.audit import AuditEntry

    return AuditEntry(at=at, actor_kind="user", actor_id="1", action=action, entity="contact", entity_id="7", detail={})


def _check(month, closes_at):
    return MonthlyCheck(
        month=month,
        send_on=closes_at.date() - timedelta(days=30),
        first_reminder_on=closes_at.date() - timedelta(days=27),
        second_reminder_on=closes_at.date() - timedelta(days=26),
        call_on=closes_at.date() - timedelta(days=25),
        opened_at=closes_at - timedelta(days=30),
        closes_at=closes_at,
        created_at=closes_at - timedelta(days=30),
    )


def test_the_audit_log_and_the_routine_test_record_are_deleted_after_their_own_periods(app, clock):
    from sqlalchemy import text

    from core.audit import AuditEntry
    from core.retention import AuditLogPurge

    with app.app_context():
        clock.set(ago(months=59))  # the register's own audit entries are younger than the period
        ids = make_register(
            clock, {"anna": {"provider": "Hemtjänst Norr", "name": "Anna Lind", "mobile": "+46701000001"}}
        )
        provider_id = db.session.get(__import__("contacts.models").models.ContactPerson, ids["anna"]).provider_id
        old_check = _check("2020-04", ago(months=120, days=1))  # closed just over 10 years ago
        kept_check = _check("2020-06", ago(months=120) + timedelta(days=1))
        db.session.add_all([old_check, kept_check])
        db.session.flush()
        for check in (old_check, kept_check):
            recipient = CheckRecipient(
                check_id=check.id,
                contact_id=ids["anna"],
                provider_id=provider_id,
                added_at=check.opened_at,
                added_reason="start",
                nonce="n" + check.month,
                answer="yes",
                answered_at=check.opened_at,
                answered_via="link",
            )
            db.session.add(recipient)
            db.session.flush()
            db.session.add(
                CheckCorrection(
                    recipient_id=recipient.id,
                    kind="correction",
                    contact_id=ids["anna"],
                    provider_id=provider_id,
                    proposed={},
                    comment="",
                    status="applied",
                    submitted_at=check.opened_at,
                    submitted_via="link",
                )
            )
        old_entries = [_audit_entry(ago(months=60, days=d)) for d in (1, 400)]
        kept_entry = _audit_entry(ago(months=60) + timedelta(hours=1))
        db.session.add_all([*old_entries, kept_entry])
        db.session.commit()
        kept_check_id, kept_entry_id = kept_check.id, kept_entry.id

        clock.set(NOW)
        dry = run_retention(db.session, now=clock.now(), dry_run=True)
        db.session.commit()
        assert (dry.counts["check_records"], dry.counts["audit_log"]) == (1, 2)
        assert (
            db.session.scalar(select(db.func.count()).select_from(AuditEntry).where(AuditEntry.at < ago(months=60)))
            == 2
        )

        run = run_retention(db.session, now=clock.now())
        db.session.commit()
        assert (run.counts["check_records"], run.counts["audit_log"]) == (1, 2)
        assert [c.id for c in db.session.scalars(select(MonthlyCheck))] == [kept_check_id]
        assert {r.check_id for r in db.session.scalars(select(CheckRecipient))} == {kept_check_id}
        assert db.session.scalar(select(db.func.count()).select_from(CheckCorrection)) == 1
        remaining = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert min(entry.at for entry in remaining) >= ago(months=60)
        assert kept_entry_id in {entry.id for entry in remaining}
        purge = remaining[-1]  # the purge is itself on the record, with no personal data
        assert (purge.action, purge.entity, purge.detail["rows"]) == ("purge", "audit_log", 2)
        assert db.session.scalar(select(db.func.count()).select_from(AuditLogPurge)) == 0  # the permit is gone

        again = run_retention(db.session, now=clock.now())
        db.session.commit()
        assert (again.counts["check_records"], again.counts["audit_log"]) == (0, 0)

    # Outside the retention run the database still refuses to change or delete any entry.
    with app.app_context():
        for statement in (f"DELETE FROM audit_log WHERE id = {kept_entry_id}", "UPDATE audit_log SET action = 'x'"):
            with pytest.raises(Exception, match="append-only"):
                db.session.execute(text(statement))
            db.session.rollback()
        db.session.add(_audit_entry(ago(months=70)))
        db.session.commit()
        with pytest.raises(Exception, match="append-only"):
            db.session.execute(
                text("DELETE FROM audit_log WHERE at < :t"),
                {"t": ago(months=60).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)},
            )
        db.session.rollback()
