"""SMS to our number: stored once, matched to a contact, handed to the first handler that takes it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from contacts.models import ContactPerson, Provider
from core.extensions import db
from notifications.inbound import UNMONITORED_REPLY, registry
from notifications.models import InboundSms
from notifications.recipients import HOOKS_EXTENSION, NO_HOOKS
from notifications.segments import count_segments
from tests.support.twilio_server import signature

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
BASE_URL = "https://krisrutin.example.se"
INBOUND_PATH = "/webhooks/twilio/inbound"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
KARIN = "+46701740605"


@pytest.fixture
def app(make_app):
    """The application with Twilio configured, behind the public URL Twilio calls."""
    return make_app(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=BASE_URL)


@pytest.fixture
def make_contact(app, clock):
    def make(name="Karin Exempelsson", mobile=KARIN, *, active=True) -> int:
        with app.app_context():
            provider = db.session.scalar(select(Provider).where(Provider.name == "Hemtjänst Norr"))
            if provider is None:
                provider = Provider(name="Hemtjänst Norr", kind="municipal", created_at=clock.now())
            contact = ContactPerson(
                provider=provider, name=name, mobile=mobile, is_active=active, services=[], created_at=clock.now()
            )
            db.session.add(contact)
            db.session.commit()
            return contact.id

    return make


class Recorder:
    """A test handler: takes messages that say ``word`` (any message for ""), records every call."""

    def __init__(self, word: str, reply: str):
        self.word, self.reply, self.calls = word, reply, []

    def __call__(self, db_session, inbound, contact, now):
        self.calls.append((inbound.gateway_id, contact.name, now))
        return self.reply if self.word in ("", inbound.body.strip().upper()) else None


@pytest.fixture
def handlers():
    """Registers test handlers for one test, and removes them afterwards."""
    added = []

    def add(name, handler):
        registry.register(name, handler)
        added.append(name)
        return handler

    yield add
    for name in added:
        registry.unregister(name)


def sms(sid, body="JA", sender=KARIN):
    return {"MessageSid": sid, "From": sender, "To": "+46766861004", "Body": body, "AccountSid": "AC" + "0" * 32}


def post_inbound(client, params, *, token=AUTH_TOKEN):
    headers = {"X-Twilio-Signature": signature(token, BASE_URL + INBOUND_PATH, params)}
    return client.post(INBOUND_PATH, data=params, headers=headers)


def inbound_rows(app) -> list[InboundSms]:
    with app.app_context():
        rows = db.session.scalars(select(InboundSms).order_by(InboundSms.id)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def test_answer_from_a_contact_reaches_the_handler_and_its_reply_is_sent_escaped(
    app, client, clock, make_contact, handlers
):
    contact_id = make_contact()
    handler = handlers("test.check_answer", Recorder("JA", 'Tack <Karin> & "välkommen"!'))
    response = post_inbound(client, sms("SM" + "1" * 32, " ja "))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
        'Tack &lt;Karin&gt; &amp; "välkommen"!</Message></Response>'
    )
    assert handler.calls == [("SM" + "1" * 32, "Karin Exempelsson", clock.now())]
    [row] = inbound_rows(app)
    assert (row.contact_id, row.body, row.from_address) == (contact_id, " ja ", KARIN)
    assert (row.handled_by, row.handled_at) == ("test.check_answer", clock.now())


def test_first_handler_that_answers_takes_the_message(app, client, make_contact, handlers):
    make_contact()
    other = handlers("test.other", Recorder("STOPP", "Avregistrerad"))
    check = handlers("test.check_answer", Recorder("NEJ", "Vi hör av oss"))
    later = handlers("test.later", Recorder("", "should not be asked"))
    response = post_inbound(client, sms("SM" + "2" * 32, "Nej"))
    assert "<Message>Vi hör av oss</Message>" in response.get_data(as_text=True)
    assert len(other.calls) == 1 and len(check.calls) == 1 and later.calls == []
    assert inbound_rows(app)[0].handled_by == "test.check_answer"


def test_twilio_retry_with_the_same_sid_is_stored_and_handled_once(app, client, make_contact, handlers):
    make_contact()
    handler = handlers("test.check_answer", Recorder("JA", "Tack!"))
    first = post_inbound(client, sms("SM" + "3" * 32))
    retry = post_inbound(client, sms("SM" + "3" * 32))
    assert "<Message>Tack!</Message>" in first.get_data(as_text=True)
    assert retry.status_code == 200
    assert retry.get_data(as_text=True) == EMPTY_TWIML  # nobody gets the reply twice
    assert len(handler.calls) == 1
    assert len(inbound_rows(app)) == 1


def test_sms_from_an_unknown_number_is_stored_without_handler_or_reply(app, client, make_contact, handlers):
    make_contact()
    handler = handlers("test.check_answer", Recorder("", "should not be asked"))
    response = post_inbound(client, sms("SM" + "4" * 32, "Vinn en resa!", sender="+46700000000"))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == EMPTY_TWIML
    assert handler.calls == []
    [row] = inbound_rows(app)
    assert (row.from_address, row.contact_id, row.handled_by) == ("+46700000000", None, None)


def test_without_the_registers_hook_a_contacts_number_is_an_unknown_sender(app, client, make_contact, handlers):
    make_contact()
    app.extensions[HOOKS_EXTENSION] = NO_HOOKS  # notifications on its own: nobody to match numbers
    handler = handlers("test.check_answer", Recorder("", "should not be asked"))
    response = post_inbound(client, sms("SM" + "a" * 32, "JA"))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == EMPTY_TWIML
    assert handler.calls == []
    [row] = inbound_rows(app)
    assert (row.from_address, row.body, row.contact_id, row.handled_by) == (KARIN, "JA", None, None)


def test_inactive_contacts_and_numbers_shared_by_several_contacts_count_as_unknown(app, client, make_contact, handlers):
    make_contact("Gammal Kontakt", "+46701740606", active=False)
    make_contact("Omar", "+46701740607")
    make_contact("Lena", "+46701740607")
    handler = handlers("test.check_answer", Recorder("", "should not be asked"))
    for sid, sender in (("SM" + "5" * 32, "+46701740606"), ("SM" + "6" * 32, "+46701740607")):
        assert post_inbound(client, sms(sid, sender=sender)).get_data(as_text=True) == EMPTY_TWIML
    assert handler.calls == []
    assert [row.contact_id for row in inbound_rows(app)] == [None, None]


def test_contact_whose_message_no_handler_takes_is_told_once_a_day_where_to_turn(
    app, client, clock, make_contact, handlers
):
    make_contact()
    handlers("test.check_answer", Recorder("JA", "Tack!"))
    first = post_inbound(client, sms("SM" + "7" * 32, "Vi har ny enhetschef"))
    assert f"<Message>{UNMONITORED_REPLY}</Message>" in first.get_data(as_text=True)
    # Their phone's auto-reply (or a second message) gets no answer: no loop between two machines.
    clock.advance(minutes=1)
    assert post_inbound(client, sms("SM" + "8" * 32, "Jag är på semester")).get_data(as_text=True) == EMPTY_TWIML
    clock.advance(hours=24)
    later = post_inbound(client, sms("SM" + "9" * 32, "Hallå?"))
    assert UNMONITORED_REPLY in later.get_data(as_text=True)
    assert [row.handled_by for row in inbound_rows(app)] == [None, None, None]  # all left for the team


def test_the_not_monitored_reply_costs_one_sms():
    assert count_segments(UNMONITORED_REPLY).segments == 1


def test_failing_handler_leaves_the_message_stored_unhandled_with_its_writes_undone(
    app, client, make_contact, handlers, caplog
):
    contact_id = make_contact()

    def broken(db_session, inbound, contact, now):
        contact.role_title = "changed by a handler that then fails"
        db_session.flush()
        raise RuntimeError("a bug in the handler")

    handlers("test.broken", broken)
    later = handlers("test.later", Recorder("", "should not be asked"))
    response = post_inbound(client, sms("SM" + "a" * 32))
    assert response.status_code == 200
    assert response.get_data(as_text=True) == EMPTY_TWIML  # "not read by anyone" would be wrong here
    assert later.calls == []
    [row] = inbound_rows(app)
    assert row.handled_by is None
    with app.app_context():
        assert db.session.get(ContactPerson, contact_id).role_title == ""
    assert any("test.broken failed with RuntimeError" in r.getMessage() for r in caplog.records)
    assert not any("a bug in the handler" in r.getMessage() for r in caplog.records)


def test_unsigned_or_badly_signed_inbound_sms_is_refused_and_not_stored(app, client, make_contact, handlers):
    make_contact()
    handler = handlers("test.check_answer", Recorder("", "should not be asked"))
    assert client.post(INBOUND_PATH, data=sms("SM" + "b" * 32)).status_code == 403
    assert post_inbound(client, sms("SM" + "b" * 32), token="f" * 32).status_code == 403
    assert handler.calls == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(InboundSms)) == 0


def test_signed_inbound_sms_without_sid_or_sender_is_a_bad_request(app, client):
    response = post_inbound(client, {"Body": "JA", "From": KARIN})
    assert response.status_code == 400
    assert "MessageSid" in response.get_json()["error"]


def test_registering_two_handlers_under_one_name_is_refused(handlers):
    handlers("test.same", Recorder("JA", "1"))
    with pytest.raises(ValueError, match="already registered"):
        registry.register("test.same", Recorder("JA", "2"))


def test_retry_racing_the_first_request_is_answered_as_a_duplicate(app, clock, make_contact, handlers, monkeypatch):
    import notifications.inbound as inbound_module

    make_contact()
    handler = handlers("test.check_answer", Recorder("JA", "Tack!"))
    sid = "SM" + "c" * 32
    with app.app_context():
        db.session.add(InboundSms(gateway_id=sid, from_address=KARIN, body="JA", received_at=clock.now()))
        db.session.commit()
    # The race: the first request's row is committed after this one looked and before it inserts.
    real_lookup, looked = inbound_module._by_gateway_id, []

    def lookup_too_early(db_session, gateway_id):
        looked.append(gateway_id)
        return None if len(looked) == 1 else real_lookup(db_session, gateway_id)

    monkeypatch.setattr(inbound_module, "_by_gateway_id", lookup_too_early)
    with app.app_context():
        result = inbound_module.receive_sms(
            db_session=db.session, gateway_id=sid, from_address=KARIN, body="JA", now=clock.now()
        )
        db.session.commit()
        assert result.duplicate and result.reply is None and result.inbound.gateway_id == sid
    assert handler.calls == []
    assert len(inbound_rows(app)) == 1


def test_an_sms_with_hidden_characters_is_stored_and_handed_on_clean(app, client, make_contact, handlers):
    """An SMS is never refused (its sender cannot be told): control characters, NUL and the
    bidirectional overrides are removed and the text is stored in NFC, as the handlers see it.
    The signature is checked over the values as Twilio sent them."""
    make_contact()
    handlers("test.check_answer", Recorder("JA TACK, ÅSA", "Tack"))
    response = post_inbound(
        client, sms("SM" + "7" * 32, "\u2066Ja\x00\u202e tack, A\u030asa\u2069", sender=KARIN + "\x07")
    )
    assert response.status_code == 200
    assert "<Message>Tack</Message>" in response.get_data(as_text=True)  # the handler took it
    [row] = inbound_rows(app)
    assert (row.body, row.from_address, row.handled_by) == ("Ja tack, Åsa", KARIN, "test.check_answer")
