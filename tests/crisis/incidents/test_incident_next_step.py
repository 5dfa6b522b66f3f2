"""The incident page starts with the incident's state and its one next step (the on-call officer
arrives from an SMS on a phone): acknowledge, assess (the team), the first letter, the
resolution letter; nothing once it is closed."""

from __future__ import annotations

import re

import pytest

from core.extensions import db
from crisis.incidents.models import Incident, Letter
from tests.conftest import log_in
from tests.crisis.incidents.test_letters_helpers import SETTINGS


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


def top(client, incident_id: int) -> str:
    """The next-step section, as text, with the actions as ``[label -> target]``."""
    html = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    section = re.search(r'<section class="next-step".*?</section>', html, re.S).group(0)
    assert html.index(section) < html.index("Vem hanterar störningen")  # above everything else
    section = re.sub(r'<a class="button" href="([^"]+)">([^<]+)</a>', r"[\2 -> \1]", section)
    section = re.sub(
        r'<form method="post" action="([^"]+)">.*?>([^<]+)</button>\s*</form>', r"[\2 -> POST \1]", section, flags=re.S
    )
    section = re.sub(r"<h2.*?</h2>", "", section, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", section).split())


def _incident(clock, party: str) -> int:
    now = clock.now()
    incident = Incident(
        title="Larmen tysta",
        service="alarms",
        planned=False,
        party=party,
        party_since=now,
        status="new",
        created_at=now,
    )
    db.session.add(incident)
    db.session.commit()
    return incident.id


def _update(app, incident_id: int, **fields) -> None:
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        for name, value in fields.items():
            setattr(incident, name, value)
        db.session.commit()


def test_the_team_is_led_from_acknowledging_to_assessing_to_the_letters(app, client, clock, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    with app.app_context():
        incident_id = _incident(clock, "team")
    assert top(client, incident_id) == (
        f"Ny, inte kvitterad Oplanerat Hanteras av Välfärdsteknikteamet. "
        f"[Kvittera störningen -> POST /incidents/{incident_id}/acknowledge]"
    )
    _update(app, incident_id, status="open", acknowledged_at=clock.now())
    assert top(client, incident_id).endswith(f"[Bedöm störningen -> /incidents/{incident_id}/assess]")
    _update(app, incident_id, assessed_at=clock.now(), relevant=True, apply_local_routines=True)
    assert top(client, incident_id).endswith(
        f"[Skriv informationsbrev -> /incidents/{incident_id}/letters/new?kind=first]"
    )
    with app.app_context():
        db.session.add(
            Letter(
                incident_id=incident_id,
                number=1,
                kind="first",
                party="team",
                subject="Larmen tysta",
                body="…",
                sent_at=clock.now(),
            )
        )
        db.session.commit()
    assert top(client, incident_id).endswith(
        f"[Skriv brev om att felet är åtgärdat -> /incidents/{incident_id}/letters/new?kind=resolution]"
    )
    _update(app, incident_id, status="resolved", resolved_at=clock.now())
    assert top(client, incident_id) == "Åtgärdad Oplanerat"


def test_the_on_call_officer_writes_the_letter_once_acknowledged(app, client, clock, make_user):
    _, username, password = make_user("on_call")
    log_in(client, username, password)
    with app.app_context():
        incident_id = _incident(clock, "on_call")
    assert "[Kvittera störningen -> POST" in top(client, incident_id)
    _update(app, incident_id, status="open", acknowledged_at=clock.now())
    assert top(client, incident_id) == (
        "Kvitterad, pågår Oplanerat Hanteras av Tjänsteman i beredskap. "
        f"[Skriv informationsbrev -> /incidents/{incident_id}/letters/new?kind=first]"
    )
