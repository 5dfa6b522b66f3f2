"""Screenshots for the README: the team's start page (1366x768), the provider's phone pages
(``/k/``, ``/d/``, ``/v/`` at 390x844) and a staff member's alerting rules and the roster on a
phone, taken with Debian's Chromium through Playwright, of the
real application with the demo data (``flask demo load``) on a temporary SQLite file.

    .venv/bin/python -m tools.screenshots            # writes docs/screenshots/*.png

The clock is fixed, so the pictures change only when the pages do: the demo data is loaded on the
morning the month's check goes out (its tick sends the invitations), and the pictures are taken
that evening at 22:50, after a letter about the demo incident (and, if the demo data has none, two
visits instead of camera supervision with their alert for the first demo provider). The links are
made as the messages make them. PNG, the visible screen only (not the whole page): small files.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
DESKTOP = {"viewport": {"width": 1366, "height": 768}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 1}
TEAM_USER = ("team", "demo-team-lösenord")  # accounts/demo.py
SHOTS = (
    ("team-start.png", DESKTOP, "/"),
    ("provider-check-k.png", PHONE, "check"),
    ("provider-letter-d.png", PHONE, "letter"),
    ("provider-visits-v.png", PHONE, "visit"),
    ("staff-alerting-rules.png", PHONE, "/account/alerting"),
    ("staff-roster.png", PHONE, "/roster"),
)


def _world(app, clock) -> dict[str, str]:
    """The demo data, the month's check sent, a letter and a visit alert; returns the paths of
    the provider's links (as in the messages)."""
    from sqlalchemy import select

    from contacts.check_links import link_token as check_token
    from contacts.check_models import CheckRecipient
    from contacts.models import Provider
    from core.demo import load_demo_data
    from core.extensions import db
    from crisis.incidents.letters import link_token as letter_token
    from crisis.incidents.letters import send_letter
    from crisis.incidents.models import Incident, LetterKind, LetterReceipt
    from crisis.visits.models import SupervisedClient, SupervisionFailure, Visit, VisitAlert
    from crisis.visits.service import link_token as visit_token
    from crisis.visits.service import visits_created
    from scheduling.service import tick
    from worktime.calendar import check_plan, send_at

    policy = app.extensions["krisrutin.routine"]
    secret = app.config["SECRET_KEY"]
    sent = send_at(check_plan(2026, 12, policy), policy)
    clock.set(sent - timedelta(hours=1))
    with app.app_context():
        load_demo_data()
        clock.set(sent)
        tick(db_session=db.session, now=clock.now())
        db.session.commit()
        evening = datetime.combine(sent.astimezone(policy.timezone).date(), time(22, 50), policy.timezone)
        clock.set(evening)
        now = clock.now()
        incident = db.session.scalars(select(Incident).order_by(Incident.id)).first()
        letter = send_letter(
            db.session,
            incident,
            kind=LetterKind.FIRST,
            subject="GSM-nätet nere: kameratillsynen fungerar inte",
            body="Kameratillsynen kan inte utföras i natt. Gör fysiska besök enligt besökslistan.",
            apply_local_routines=True,
            author_id=None,
            party="on_call",
            now=now,
        )
        db.session.flush()
        receipt = db.session.scalars(
            select(LetterReceipt).where(LetterReceipt.letter_id == letter.id).order_by(LetterReceipt.id)
        ).first()
        provider = db.session.get(Provider, receipt.provider_id)
        visits = []
        already = db.session.scalars(select(VisitAlert.id)).first() is not None  # the demo's own visits
        for number, minutes in enumerate(() if already else (20, 80), start=1):
            client = SupervisedClient(
                reference=f"DEMO-{number:03d}", provider_id=provider.id, area="Norr", is_active=True, created_at=now
            )
            db.session.add(client)
            db.session.flush()
            failure = SupervisionFailure(
                client_id=client.id,
                provider_id=provider.id,
                scheduled_at=now + timedelta(minutes=minutes),
                reason="GSM nere",
                source="incident",
                incident_id=incident.id,
                created_at=now,
            )
            db.session.add(failure)
            db.session.flush()
            visits.append(
                Visit(
                    failure_id=failure.id,
                    client_id=client.id,
                    provider_id=provider.id,
                    incident_id=incident.id,
                    due_at=failure.scheduled_at,
                    status="open",
                    created_at=now,
                )
            )
        db.session.add_all(visits)
        db.session.flush()
        if visits:
            visits_created(db.session, visits, now)
        db.session.commit()
        alert = db.session.scalars(select(VisitAlert).order_by(VisitAlert.id)).first()
        recipient = db.session.scalars(
            select(CheckRecipient).where(CheckRecipient.provider_id == provider.id).order_by(CheckRecipient.id)
        ).first()
        links = {
            "check": f"/k/{check_token(recipient, secret)}",
            "letter": f"/d/{letter_token(receipt, secret)}",
            "visit": f"/v/{visit_token(alert, secret)}",
        }
        db.session.remove()
    return links


def main() -> int:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from app import create_app
    from core.clock import FixedClock
    from core.extensions import db

    if not os.access(CHROMIUM, os.X_OK):
        print(f"Chromium is not installed at {CHROMIUM}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        holder = {}
        server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
        url = f"http://127.0.0.1:{server.server_port}"
        clock = FixedClock(datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))
        app = create_app(
            {
                "DATABASE_URL": f"sqlite:///{folder}/screenshots.sqlite3",
                "SECRET_KEY": "screenshots-only-not-a-secret-0123456789",
                "KRISRUTIN_ENV": "development",
                "PUBLIC_BASE_URL": url,
                "TEAM_EMAIL": "valfardsteknik@kommun.example.se",
                "TEAM_MOBILE": "+46701740698",
            },
            clock=clock,
        )
        with app.app_context():
            from flask_migrate import upgrade

            upgrade(directory=str(ROOT / "migrations"))
        holder["app"] = app
        links = _world(app, clock)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for name, options, where in SHOTS:
                    context = browser.new_context(locale="sv-SE", timezone_id="Europe/Stockholm", **options)
                    page = context.new_page()
                    if where.startswith("/"):
                        page.goto(url + "/login")
                        page.get_by_label("Användarnamn").fill(TEAM_USER[0])
                        page.get_by_label("Lösenord").fill(TEAM_USER[1])
                        page.get_by_role("button", name="Logga in").click()
                        page.wait_for_url(lambda address: "/login" not in address)
                        if where != "/":
                            page.goto(url + where)
                    else:
                        page.goto(url + links[where])
                    page.wait_for_load_state("load")
                    page.screenshot(path=str(OUT / name))
                    print(f"{OUT.relative_to(ROOT) / name}")
                    context.close()
                browser.close()
        finally:
            server.shutdown()
            thread.join(timeout=5)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
