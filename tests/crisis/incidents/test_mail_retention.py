"""Gallring of the supplier mailbox's messages: judged ones lose their bytes, sender and subject
after the incidents' period; those still waiting in the triage list are kept."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from core.extensions import db
from core.retention import run_retention
from crisis.incidents.models import InboundEmail


def test_judged_mail_is_cleared_after_the_period_and_mail_waiting_for_triage_is_kept(app, clock):
    old = datetime(2020, 1, 6, 9, 0, tzinfo=timezone.utc)
    with app.app_context():
        for n, status in enumerate(("dismissed", "notice", "triage")):
            db.session.add(
                InboundEmail(
                    mailbox_key=f"INBOX:1:{n}",
                    sender="nagon@example.org",
                    subject="Hej",
                    received_at=old,
                    size=10,
                    raw=b"From: nagon@example.org\r\n\r\nHej\r\n",
                    status=status,
                )
            )
        db.session.add(
            InboundEmail(
                mailbox_key="INBOX:1:9",
                sender="ny@example.org",
                received_at=clock.now(),
                size=1,
                raw=b"x",
                status="dismissed",
            )
        )
        db.session.commit()
        run = run_retention(db.session, now=clock.now())
        db.session.commit()
        assert run.counts["inbound_emails"] == 2
        kept = {row.mailbox_key: row for row in db.session.scalars(select(InboundEmail))}
        assert kept["INBOX:1:0"].raw is None and kept["INBOX:1:0"].sender is None
        assert kept["INBOX:1:1"].raw is None and kept["INBOX:1:1"].subject is None
        assert kept["INBOX:1:2"].raw is not None  # still to be judged
        assert kept["INBOX:1:9"].raw == b"x"  # recent
