"""Mina larmregler (/account/alerting): a staff member sets their own paging steps within the
routine's limits, all or nothing; the roster shows everyone's rules in words and tests numbers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from crisis.oncall.models import PagingStep, RosterMember
from notifications.models import Message
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_routing_helpers import put_on_roster, routing_app, staff


@pytest.fixture
def app(make_app):
    return routing_app(make_app)


@pytest.fixture
def people(app, make_user):
    ids = staff(app, make_user, ["anna", "bo"])
    ids |= staff(app, make_user, ["teamet"], role="team", first=8)
    put_on_roster(app, [ids["anna"], ids["bo"]])
    return ids


def logged_in(app, username):
    client = app.test_client()
    log_in(client, username)
    return client


def own_steps(app, user_id) -> list[tuple[int, bool, bool, bool]]:
    with app.app_context():
        rows = db.session.scalars(select(PagingStep).where(PagingStep.user_id == user_id).order_by(PagingStep.position))
        found = [(r.minute, r.sms, r.email, r.call) for r in rows]
        db.session.remove()
        return found


def form(token, rows, action="save"):
    data = {"csrf_token": token, "rows": str(len(rows)), "action": action}
    for i, (minute, channels) in enumerate(rows):
        data[f"minute-{i}"] = minute
        for channel in channels:
            data[f"{channel}-{i}"] = "on"
    return data


def test_the_officer_sets_own_rules_and_resets_them(app, clock, people):
    client = logged_in(app, "bo")
    page = client.get("/account/alerting")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Mina larmregler" in html
    assert "sms + e-post direkt, samtal efter 5 min, samtal efter 10 min" in html
    assert "<legend>Steg 1</legend>" in html
    token = csrf_token_from(html)

    added = client.post("/account/alerting", data=form(token, [("0", ["sms"])], action="add"))
    assert added.status_code == 200 and "<legend>Steg 2</legend>" in added.get_data(as_text=True)
    assert own_steps(app, people["bo"]) == []  # adding a row saves nothing

    saved = client.post("/account/alerting", data=form(token, [("0", ["call"]), ("3", ["sms", "email"])]))
    assert saved.status_code == 302
    assert own_steps(app, people["bo"]) == [(0, False, False, True), (3, True, True, False)]
    assert "samtal direkt, sms + e-post efter 3 min" in client.get("/account/alerting").get_data(as_text=True)

    assert client.post("/account/alerting", data={"csrf_token": token, "action": "reset"}).status_code == 302
    assert own_steps(app, people["bo"]) == []


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("2", ["sms"])], "Rad 1: det första steget ska gälla direkt (minut 0)."),
        ([("0", ["email"])], "Rad 1: det första steget ska ha sms eller samtal, inte bara e-post."),
        ([("0", ["sms"]), ("15", ["call"])], "Rad 2: ange en minut från 0 till 14."),
        ([("0", ["sms"]), ("5", ["call"]), ("4", ["call"])], "Rad 3: ange en senare minut än raden före."),
        ([("0", ["sms"]), ("5", [])], "Rad 2: välj sms, e-post eller samtal."),
        ([("0", ["sms"]), ("fem", ["call"])], "Rad 2: ange minuter som ett heltal, t.ex. 5."),
        ([("0", ["sms"])] + [(str(m), ["call"]) for m in range(1, 7)], "Högst 6 steg."),
    ],
)
def test_rules_outside_the_limits_are_refused_and_nothing_is_saved(app, clock, people, rows, message):
    client = logged_in(app, "bo")
    token = csrf_token_from(client.get("/account/alerting").get_data(as_text=True))
    client.post("/account/alerting", data=form(token, [("0", ["sms"]), ("4", ["call"])]))
    refused = client.post("/account/alerting", data=form(token, rows))
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert message in html
    assert 'class="error-summary"' in html
    assert own_steps(app, people["bo"]) == [(0, True, False, False), (4, False, False, True)]


def test_a_broken_form_is_a_400_not_a_500(app, clock, people):
    client = logged_in(app, "bo")
    token = csrf_token_from(client.get("/account/alerting").get_data(as_text=True))
    assert client.post("/account/alerting", data={"csrf_token": token, "rows": "x"}).status_code == 400
    assert client.post("/account/alerting", data=form(token, [("0", ["sms"])], action="remove-7")).status_code == 400


def member(app, user_id) -> int:
    with app.app_context():
        return db.session.scalars(select(RosterMember.id).where(RosterMember.user_id == user_id)).one()


def test_the_roster_shows_each_members_rules_and_the_test_buttons_queue_a_test(app, clock, people):
    client = logged_in(app, "bo")
    token = csrf_token_from(client.get("/account/alerting").get_data(as_text=True))
    client.post("/account/alerting", data=form(token, [("0", ["sms", "call"]), ("7", ["call"])]))

    team = logged_in(app, "teamet")
    html = team.get("/roster").get_data(as_text=True)
    assert "sms + samtal direkt, samtal efter 7 min" in html  # bo's own
    assert "sms + e-post direkt, samtal efter 5 min, samtal efter 10 min" in html  # anna's: the default
    assert html.count("Testa sms") == 2

    token = csrf_token_from(html)
    assert (
        team.post(
            f"/roster/members/{member(app, people['anna'])}/test", data={"csrf_token": token, "channel": "sms"}
        ).status_code
        == 302
    )
    with app.app_context():
        sent = db.session.scalars(select(Message).where(Message.kind == "oncall.test")).one()
        assert (sent.channel, sent.to_address, sent.status) == ("sms", "+46701000001", "queued")
        assert "Test anna" in sent.body_text
    shown = team.get("/roster").get_data(as_text=True)
    assert "Senaste test (SMS): I kö" in shown
    assert (
        team.post(
            f"/roster/members/{member(app, people['anna'])}/test", data={"csrf_token": token, "channel": "fax"}
        ).status_code
        == 400
    )

    # A member tests their own numbers, not someone else's.
    own = logged_in(app, "bo")
    token = csrf_token_from(own.get("/roster").get_data(as_text=True))
    assert (
        own.post(
            f"/roster/members/{member(app, people['bo'])}/test", data={"csrf_token": token, "channel": "sms"}
        ).status_code
        == 302
    )
    assert (
        own.post(
            f"/roster/members/{member(app, people['anna'])}/test", data={"csrf_token": token, "channel": "sms"}
        ).status_code
        == 403
    )


def test_the_account_page_links_to_the_rules(app, clock, people):
    html = logged_in(app, "bo").get("/account").get_data(as_text=True)
    assert 'href="/account/alerting"' in html


def test_the_test_call_button_queues_a_test_call(app, clock, people):
    team = logged_in(app, "teamet")
    token = csrf_token_from(team.get("/roster").get_data(as_text=True))
    assert (
        team.post(
            f"/roster/members/{member(app, people['bo'])}/test", data={"csrf_token": token, "channel": "call"}
        ).status_code
        == 302
    )
    with app.app_context():
        call = db.session.scalars(select(Message).where(Message.kind == "oncall.test")).one()
        assert (call.channel, call.to_address) == ("call", "+46701000002")
        assert "provsamtal" in call.body_text
