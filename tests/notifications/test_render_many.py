"""render_many: a letter's templates run once for all its recipients, and each recipient's
message is exactly what render gives it (issue 18). Personal strings that HTML must escape, an
empty one, a template that computes with one, and a link that is not http(s)."""

from __future__ import annotations

import pytest

from notifications import rendering
from notifications.rendering import RenderError, render, render_many

SENDER = "Linköpings kommun"


def letter_shared(*, office_hours: bool = False, reminder: bool = False) -> dict:
    """What every copy of a letter shares (crisis.incidents.letter_texts.shared_context's shape)."""
    return {
        "letter": {
            "number": 1,
            "update_number": None,
            "kind": "first",
            "kind_label": "Informationsbrev",
            "subject": "Driftstörning: kameratillsyn",
            "title": "Kameratillsyn <GSM> & larm",
            "body": "Telias GSM-nät är ur funktion.\n\nGör fysiska tillsyner.",
            "sent": "tisdag 9 februari kl. 02:10",
            "urgent": True,
        },
        "incident": {
            "title": "GSM",
            "service": "Kameratillsyn",
            "supplier": "Telia",
            "planned": False,
            "starts": "kl. 02:05",
            "expected_end": "",
        },
        "measures": ["inform_staff", "sos_112"],
        "contact": {
            "office_hours": office_hours,
            "team_email": "team@example.se",
            "urgent_name": "Tove",
            "urgent_phone": "+46701999999",
            "urgent_email": "",
        },
        "sms_title": "Kameratillsyn",
        "team_copy": False,
        "reminder": reminder,
    }


RECIPIENTS = [
    {"name": "Anna Lind", "provider": "Hemtjänst Norr", "link": "https://k.example.se/d/1-abc"},
    {"name": "Bo <b>Ek</b> & \"son\" 'd'", "provider": "Norr & Söder <AB>", "link": "https://k.example.se/d/2?a=1&b=2"},
    {"name": "Cia  Berg ", "provider": "Omsorg  Söder", "link": "https://k.example.se/d/3-xyz"},
    {"name": "Åsa Öberg", "provider": "Hemtjänst Norr", "link": "https://k.example.se/d/1-abc"},
]


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("shared", [letter_shared(), letter_shared(office_hours=True, reminder=True)])
def test_each_copy_is_what_rendering_it_alone_gives(language, shared):
    many = render_many("crisis.letter", language, shared, RECIPIENTS, links=("link",), sender=SENDER)
    alone = [render("crisis.letter", language, {**shared, **values}, sender=SENDER) for values in RECIPIENTS]
    assert many == alone
    # Not trivially equal: each copy carries its own recipient, escaped where HTML needs it.
    assert "Hej Bo <b>Ek</b>" in many[1].text or "Hello Bo <b>Ek</b>" in many[1].text
    assert "Bo &lt;b&gt;Ek&lt;/b&gt; &amp; &#34;son&#34; &#39;d&#39;" in many[1].html
    assert "https://k.example.se/d/2?a=1&amp;b=2" in many[1].html
    assert many[0].sms.endswith("https://k.example.se/d/1-abc") and many[2].sms.endswith("/d/3-xyz")


def test_the_templates_run_once_for_all_recipients_and_once_more_as_the_check(monkeypatch):
    runs = []
    real = rendering._render_parts
    monkeypatch.setattr(rendering, "_render_parts", lambda *args: runs.append(args[0]) or real(*args))
    render_many("crisis.letter", "sv", letter_shared(), RECIPIENTS * 25, links=("link",), sender=SENDER)
    assert len(runs) == 2, "once with placeholders, once in full for the first recipient"


def test_a_recipient_with_an_empty_personal_value_is_rendered_in_full():
    recipients = [*RECIPIENTS[:2], {"name": "", "provider": "Norr", "link": "https://k.example.se/d/9"}]
    many = render_many("crisis.letter", "sv", letter_shared(), recipients, links=("link",), sender=SENDER)
    assert many == [render("crisis.letter", "sv", {**letter_shared(), **r}, sender=SENDER) for r in recipients]


def test_a_link_that_is_not_http_is_refused_as_render_refuses_it():
    recipients = [RECIPIENTS[0], {**RECIPIENTS[1], "link": "javascript:alert(1)"}]
    with pytest.raises(RenderError, match="not an http"):
        render_many("crisis.letter", "sv", letter_shared(), recipients, links=("link",), sender=SENDER)


@pytest.fixture
def own_templates(tmp_path, monkeypatch):
    """A template folder of the test's own (the caches cleared before and after)."""
    (tmp_path / "sv").mkdir()
    monkeypatch.setattr(rendering, "TEMPLATE_DIR", tmp_path)
    rendering._parts.cache_clear()
    rendering.environment.cache_clear()
    yield tmp_path / "sv"
    rendering._parts.cache_clear()
    rendering.environment.cache_clear()


def test_templates_that_compute_with_a_personal_value_are_rendered_per_recipient(own_templates, caplog):
    (own_templates / "shout.subject.txt").write_text("Till {{ name | upper }}")
    (own_templates / "shout.txt").write_text("Hej {{ name }}, {{ name | length }} tecken.")
    recipients = [{"name": "anna"}, {"name": "bo"}, {"name": "cia"}]
    many = render_many("shout", "sv", {}, recipients, sender=SENDER)
    assert [message.subject for message in many] == ["Till ANNA", "Till BO", "Till CIA"]
    assert [message.text for message in many] == [
        "Hej anna, 4 tecken.\n",
        "Hej bo, 2 tecken.\n",
        "Hej cia, 3 tecken.\n",
    ]
    assert "compute with a personal value" in caplog.text and "anna" not in caplog.text


def test_whitespace_in_a_personal_value_is_tidied_as_render_tidies_it(own_templates):
    (own_templates / "note.subject.txt").write_text("Till {{ name }}\n")
    (own_templates / "note.txt").write_text("Hej {{ name }}!\n")
    (own_templates / "note.sms.txt").write_text("Hej   {{ name }}!\n\n\n\nSlut")
    recipients = [{"name": "Anna\n  Lind"}, {"name": "  Bo   Ek  "}]
    many = render_many("note", "sv", {}, recipients, sender=SENDER)
    assert many == [render("note", "sv", r, sender=SENDER) for r in recipients]
    assert many[0].subject == "Till Anna Lind"


def test_recipients_without_personal_values_share_one_rendering():
    many = render_many("crisis.letter", "sv", {**letter_shared(), **RECIPIENTS[0]}, [{}, {}, {}], sender=SENDER)
    assert many == [render("crisis.letter", "sv", {**letter_shared(), **RECIPIENTS[0]}, sender=SENDER)] * 3
