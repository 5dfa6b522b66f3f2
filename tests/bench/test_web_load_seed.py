"""bench.web_load's data set is one the pages accept: a small seed, the three pages it loads."""

from __future__ import annotations

import re

from bench.web_load import PASSWORD, seed
from core.extensions import db
from tests.conftest import csrf_token_from


def test_the_seeded_pages_answer_a_logged_in_team_member_and_a_visit_link(app, clock):
    with app.app_context():
        data = seed(
            providers=20,
            contacts=60,
            incidents=10,
            visits=8,
            clients=1,
            now=clock.now(),
            secret=app.config["SECRET_KEY"],
        )
        db.session.remove()
    client = app.test_client()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    login = client.post("/login", data={"username": data["usernames"][0], "password": PASSWORD, "csrf_token": token})
    assert login.status_code == 302

    assert client.get("/").status_code == 200
    everyone = client.get(f"/incidents/{data['incident_ids'][0]}").get_data(as_text=True)
    assert "Berörda utförare (20)" in everyone  # the first incident affects every provider
    chosen = client.get(f"/incidents/{data['incident_ids'][1]}").get_data(as_text=True)
    assert "Berörda utförare (10)" in chosen

    visits = app.test_client().get(f"/v/{data['visit_tokens'][0]}")
    assert visits.status_code == 200
    assert len(set(re.findall(r"BENCH-\d{5}", visits.get_data(as_text=True)))) == 4
