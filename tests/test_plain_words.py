"""Every page speaks plain words: no internal name (an enum value, a snake_case word, a message
kind such as ``check.invite``) in the text a person reads, in Swedish or English.

The walk opens every GET page of the URL map that answers HTML, with the sweep's world (one row
of everything, tests/support/sweep_world.py) and a few more of the events that write the
histories (call outcomes, a change through the API, visits created and escalated), as the team,
the on-call officer, the admin and through the providers' signed links, in both languages. The
visible text is the page without its tags, scripts, styles, attributes and code blocks.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from core.clock import FixedClock
from core.extensions import db
from scheduling.service import tick
from tests.conftest import build_app, create_schema
from tests.support.sweep_world import SETTINGS, build_world

WALK_ROLES = ("team", "on_call", "admin", "provider")  # and the link pages, anonymously
LINK_ARGUMENTS = {"check_public": "k", "provider_page": "d", "visit_page": "v"}
# Internal names: snake_case words, message kinds (``check.invite``) and the enum values that are
# English words no Swedish page would use (checked on Swedish pages only: English has them as words).
SNAKE = re.compile(r"(?<![\w@./-])[a-z]+(?:_[a-z0-9]+)+(?![\w@/-])")
KIND = re.compile(r"(?<![\w@./-])(?:check|crisis|test|generic)\.[a-z_.]+(?![\w@/-])")
ENUM_WORDS = re.compile(
    r"(?<![\w@./-])(?:pending|done|failed|cancelled|queued|sending|sent|delivered|undelivered|new|open|resolved|form|"
    r"first|update|resolution|on_call|admin|provider|supplier|confirmed|corrections|reached|municipal|private|"
    r"camera_supervision|alarms|locks|email|api|incident|letter|alert|monthly_check|visit_alert)(?![\w@/-])"
)


class _Text(HTMLParser):
    """The text a person reads: no tags, attributes, scripts, styles or code blocks. The body of a
    message as it was sent (``class="message-body"``, on the console and in a register extract)
    is kept apart: its numbers and dates are the letter's (another part of issue 16 owns the
    letters' texts), its words are checked all the same."""

    SKIPPED = frozenset({"script", "style", "code", "pre", "template"})
    VOID = frozenset({"br", "img", "input", "meta", "link", "hr", "wbr", "source", "col", "area", "base"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.stack: list[bool] = []  # per open element: whether it is a sent message's body
        self.parts: list[str] = []
        self.sent: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self.depth += 1
        if tag not in self.VOID:
            self.stack.append("message-body" in (dict(attrs).get("class") or "").split())

    def handle_endtag(self, tag):
        if tag in self.SKIPPED and self.depth:
            self.depth -= 1
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not self.depth:
            (self.sent if any(self.stack) else self.parts).append(data)


def _texts(html: str) -> tuple[str, str]:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split()), " ".join(" ".join(parser.sent).split())


def visible_text(html: str) -> str:
    """The page's own words (a sent message's body left out)."""
    return _texts(html)[0]


E164 = re.compile(r"\+46\d{6,}")  # a person's number as stored, not as people read it (070-123 45 67)
MONTH = re.compile(r"(?<![\w-])\d{4}-\d{2}(?![\w-])")  # a month shown as 2027-01, not in words


def internal_names(text: str, language: str) -> list[str]:
    # e-mail addresses and URLs are not words
    text = re.sub(r"\S+@\S+|https?://\S+", " ", text)
    found = SNAKE.findall(text) + KIND.findall(text) + MONTH.findall(text) + E164.findall(text)
    if language == "sv":
        found += ENUM_WORDS.findall(text)
    return sorted(set(found))


def test_the_text_filter_finds_internal_names_and_spares_words():
    assert internal_names("Steg: visits_created, check.invite", "sv") == ["check.invite", "visits_created"]
    assert internal_names("Status: pending", "sv") == ["pending"]
    assert internal_names("Månadskontroll 2027-01, skickad 2027-01-04", "sv") == ["2027-01"]
    assert internal_names("Ring +46701234567 eller 070-123 45 67", "sv") == ["+46701234567"]
    assert internal_names("Status: pending", "en") == []
    assert internal_names("Skriv till anna.lind@example.se eller https://x.se/k/a_b", "sv") == []
    assert visible_text('<p title="on_call">Hej <code>not_reached</code><script>a_b()</script></p>') == "Hej"
    assert _texts('<p>Sms<br></p><div class="message-body">Ring <b>+46701</b></div><p>ok</p>') == (
        "Sms ok",
        "Ring +46701",
    )


def _enrich(app, clock):
    """The events whose history the pages show, beyond the sweep's one of everything."""
    from accounts.models import User
    from contacts.check_models import CheckRecipient
    from contacts.check_review import record_call as record_check_call
    from contacts.models import ContactPerson
    from contacts.register import Actor, update_contact
    from core.retention import run_retention
    from crisis.incidents import letters
    from crisis.incidents.models import LetterReceipt
    from crisis.visits import service as visits
    from crisis.visits.models import VisitAlert
    from notifications.inbound import receive_sms

    with app.app_context():
        now = clock.now()
        for user in db.session.scalars(select(User)):  # the sweep names its users by their roles
            user.display_name = "Eva Ek"
        team = db.session.scalars(select(User).where(User.username == "sweep-team")).one().id
        receipt = db.session.scalars(select(LetterReceipt)).first()
        letters.record_call(db.session, receipt, outcome="not_reached", note="", user_id=team, now=now)
        alert = db.session.scalars(select(VisitAlert)).first()
        visits.record_call(db.session, alert, outcome="not_reached", note="", user_id=team, now=now)
        recipient = db.session.scalars(select(CheckRecipient)).first()
        record_check_call(db.session, recipient, outcome="not_reached", note="", user_id=team, now=now)
        contact = db.session.get(ContactPerson, recipient.contact_id)
        update_contact(db.session, contact, {"role_title": "Enhetschef"}, actor=Actor("api", team), now=now)
        db.session.commit()
        receive_sms(db_session=db.session, gateway_id="SM1", from_address=contact.mobile, body="JA", now=now)
        db.session.commit()
        run_retention(db.session, now=now, dry_run=True, trigger="cli")
        db.session.commit()
        db.session.remove()


def _one_visit_not_done(now):
    """After the escalation: the provider could not make one visit (a reason the pages name)."""
    from crisis.visits.models import Visit
    from crisis.visits.service import mark_visits

    visit = db.session.scalars(select(Visit)).first()
    mark_visits(
        db.session,
        visit.provider_id,
        [visit.id],
        outcome="not_done",
        done_at=None,
        reason="not_home",
        comment=None,
        by="Anna",
        now=now,
    )
    db.session.commit()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    clock = FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))
    app = build_app(f"sqlite:///{tmp_path_factory.mktemp('words') / 'words.sqlite3'}", clock, **SETTINGS)
    create_schema(app)
    built = build_world(app, clock)
    _enrich(app, clock)
    clock.set(clock.now() + timedelta(hours=3))  # the visits are overdue and escalated
    with app.app_context():
        tick(db_session=db.session, now=clock.now())
        db.session.commit()
        _one_visit_not_done(clock.now())
        db.session.remove()
    yield built
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _pages(world):
    from accounts.access import access_rule_for

    for rule in sorted(world.app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint == "static" or rule.rule.startswith("/api/"):
            continue
        prefix = rule.endpoint.split(".")[0]
        values = {}
        for argument in rule.arguments:
            if argument == "token":
                if prefix not in LINK_ARGUMENTS:
                    break
                values[argument] = world.links[LINK_ARGUMENTS[prefix]]
            else:
                values[argument] = world.path_values[argument]
        else:
            path = rule.rule
            for argument, value in values.items():
                path = re.sub(rf"<(?:\w+(?:\([^)]*\))?:)?{argument}>", str(value), path)
            access = access_rule_for(world.app, rule.endpoint)
            if access.public:
                yield path, "anonymous"
            else:
                for role in WALK_ROLES:
                    if role in {r.value for r in access.roles}:
                        yield path, role


def _deliveries(world):
    """The deliveries pages of each kind of reference (the walk's world names an incident)."""
    from contacts.check_models import MonthlyCheck
    from crisis.incidents.models import Letter
    from crisis.visits.models import VisitAlert

    with world.app.app_context():
        refs = {
            "monthly_check": db.session.scalars(select(MonthlyCheck.id)).first(),
            "letter": db.session.scalars(select(Letter.id)).first(),
            "visit_alert": db.session.scalars(select(VisitAlert.id)).first(),
        }
        db.session.remove()
    return [(f"/notifications/deliveries/{kind}/{ref_id}", "team") for kind, ref_id in refs.items()]


@pytest.mark.parametrize("language", ["sv", "en"])
def test_no_page_shows_an_internal_name(world, language):
    offenders = {}
    walked = 0
    for path, role in [*_pages(world), *_deliveries(world)]:
        response = world.clients[role].get(path, query_string={"lang": language})
        if response.mimetype != "text/html" or response.status_code >= 500:
            assert response.status_code < 500, path
            continue
        walked += 1
        own, sent = _texts(response.get_data(as_text=True))
        found = internal_names(own, language) + [
            name for name in internal_names(sent, language) if not E164.fullmatch(name) and not MONTH.fullmatch(name)
        ]
        if found:
            offenders[f"{role} {path}"] = found
    assert walked >= 40
    for page, found in offenders.items():
        print("OFFENDER", language, page, found)
    assert offenders == {}


def test_the_deliveries_page_says_in_words_what_the_messages_are_about(world):
    client = world.clients["team"]
    pages = {path.split("/")[3]: path for path, _role in _deliveries(world)}
    check = client.get(pages["monthly_check"], query_string={"lang": "sv"}).get_data(as_text=True)
    assert 'Gäller: <a href="/checks/2026-11">Månadskontroll november 2026</a>' in check
    letter = visible_text(client.get(pages["letter"]).get_data(as_text=True))
    assert "Gäller: Brev 1 (Informationsbrev): Störning i kameratillsynen" in letter
    alert = client.get(pages["visit_alert"], query_string={"lang": "sv"}).get_data(as_text=True)
    assert 'Gäller: <a href="/visits">Besked om 1 fysiskt besök till Hemtjänst Norr</a>' in alert
    english = client.get(pages["monthly_check"], query_string={"lang": "en"}).get_data(as_text=True)
    assert "Monthly check November 2026</a>" in english


def test_the_timeline_says_how_many_visits_and_for_which_providers(world):
    page = world.clients["team"].get("/incidents/1", query_string={"lang": "sv"})
    text = visible_text(page.get_data(as_text=True))
    assert "Besök eskalerade: 1 besök för Hemtjänst Norr" in text


def test_the_visits_step_names_the_count_and_the_providers(world):
    from crisis.incidents.models import IncidentEvent
    from crisis.incidents.views import describe_event

    event = IncidentEvent(kind="visits_created", detail={"count": 47, "providers": [1, 2]})
    with world.app.test_request_context("/?lang=sv"):
        text = describe_event(event, {}, None, {1: "Hemtjänst Norr", 2: "Omsorg Söder AB"})
    assert text == "Fysiska besök i stället för kameratillsyn: 47 besök för Hemtjänst Norr, Omsorg Söder AB"


def test_every_field_the_audit_log_may_name_has_a_label(world):
    """The audit log names the changed fields of every audited model (core.audit.track)."""
    from core.audit import _TRACKED
    from core.labels import VOCABULARIES

    assert _TRACKED
    for model, entity in _TRACKED.items():
        assert entity in VOCABULARIES["record"], entity
        unlabelled = {c.name for c in model.__table__.columns if c.name != "id"} - set(VOCABULARIES["field"])
        assert not unlabelled, (entity, unlabelled)
