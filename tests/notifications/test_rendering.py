"""Rendering message kinds: both languages, strict variables, escaped HTML, SMS within limits."""

import re
from html.parser import HTMLParser

import pytest

from notifications.rendering import RenderError, render, sms_preview

LINK = "https://krisrutin.kommun.example.se/k/AbC123"


def generic(**overrides):
    context = {
        "subject": "Avbrott i larmtjänsten",
        "body": "Larmtjänsten är nere sedan kl. 14.05.\nVi återkommer.\n\nRing oss vid frågor.",
        "link": LINK,
        "link_text": "Se läget i Krisrutin",
    }
    context.update(overrides)
    return context


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.attrs = {}
        self.links = []
        self._in_a = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.setdefault(tag, []).append(dict(attrs))
        if tag == "a":
            self._in_a = [dict(attrs)["href"], ""]

    def handle_data(self, data):
        if self._in_a is not None:
            self._in_a[1] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._in_a is not None:
            self.links.append(tuple(self._in_a))
            self._in_a = None


def parse(html):
    parser = _Collect()
    parser.feed(html)
    return parser


def test_generic_message_renders_all_four_parts_in_swedish():
    message = render("generic", "sv", generic())
    assert message.language == "sv"
    assert message.subject == "Avbrott i larmtjänsten"
    assert message.text.startswith("Larmtjänsten är nere sedan kl. 14.05.\nVi återkommer.\n\nRing oss vid frågor.")
    assert f"Se läget i Krisrutin:\n{LINK}" in message.text
    assert "Svara på det här mejlet" in message.text
    assert message.sms == f"Larmtjänsten är nere sedan kl. 14.05.\nVi återkommer.\n\nRing oss vid frågor.\n{LINK}"


def test_html_is_accessible_a_language_a_heading_and_a_link_that_says_where_it_goes():
    html = render("generic", "sv", generic()).html
    page = parse(html)
    assert page.attrs["html"][0]["lang"] == "sv"
    assert "h1" in page.tags
    assert page.links[0] == (LINK, "Se läget i Krisrutin")
    assert "<title>Avbrott i larmtjänsten</title>" in html


def test_html_keeps_lines_and_paragraphs_of_the_body():
    html = render("generic", "sv", generic()).html
    assert "Larmtjänsten är nere sedan kl. 14.05.<br>Vi återkommer.</p>" in html
    assert '<p style="margin:0 0 16px;">Ring oss vid frågor.</p>' in html


def test_english_message_is_in_english():
    message = render("generic", "en", generic(link_text=None))
    page = parse(message.html)
    assert message.language == "en"
    assert page.attrs["html"][0]["lang"] == "en"
    assert page.links[0] == (LINK, "Open the page in Krisrutin")
    assert "Reply to this e-mail" in message.text


def test_a_language_without_the_templates_falls_back_to_swedish():
    message = render("test.hello", "fi", {"name": "Aino", "link": LINK})
    assert message.language == "sv"
    assert message.subject == "Hej Aino: ett testmeddelande från Krisrutin"


def test_link_is_optional_in_the_generic_message():
    message = render("generic", "sv", {"subject": "Info", "body": "Inget att göra."})
    assert "<a " not in message.html
    assert message.sms == "Inget att göra."
    assert "Öppna sidan" not in message.text


def test_a_missing_variable_is_an_error_not_a_blank():
    with pytest.raises(RenderError, match="name"):
        render("test.hello", "sv", {"link": LINK})


def test_unknown_kind_is_an_error():
    with pytest.raises(RenderError, match="unknown message kind"):
        render("no.such.kind", "sv", {})


@pytest.mark.parametrize("kind", ["../sv/generic", "_layout", "generic/../../x", "Generic", ""])
def test_a_kind_that_is_not_a_template_name_is_an_error(kind):
    with pytest.raises(RenderError):
        render(kind, "sv", generic())


def test_html_escapes_context_values():
    provider = '<script>alert("x")</script> Omsorg & Co'
    message = render(
        "generic", "sv", generic(subject=f"Avbrott hos {provider}", body=f"{provider} har ringt.", link_text=provider)
    )
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Omsorg &amp; Co" in message.html
    assert parse(message.html).tags.count("script") == 0
    # Plain text and SMS are not HTML: they keep the name as it is.
    assert provider in message.text
    assert provider in message.sms
    assert message.subject == f"Avbrott hos {provider}"


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,x", "//evil.example/x"])
def test_a_link_that_is_not_http_is_refused_in_html(link):
    with pytest.raises(RenderError, match="not an http"):
        render("generic", "sv", generic(link=link))


def test_subject_is_one_line_whatever_the_context():
    message = render("generic", "sv", generic(subject="Rad ett\r\nBcc: someone@example.se"))
    assert "\n" not in message.subject and "\r" not in message.subject


@pytest.mark.parametrize("language", ["sv", "en"])
def test_test_message_sms_fits_in_one_gsm7_segment(language):
    message = render("test.hello", language, {"name": "Åsa Öberg", "link": LINK})
    length = message.sms_length
    assert (length.encoding, length.segments) == ("GSM-7", 1)
    assert LINK in message.sms


@pytest.mark.parametrize("language", ["sv", "en"])
def test_test_message_has_every_part(language):
    message = render("test.hello", language, {"name": "Åsa", "link": LINK})
    assert all([message.subject, message.text, message.html, message.sms])
    assert parse(message.html).links[0][0] == LINK


def test_sms_preview_normalises_whitespace_and_counts_segments():
    text, length = sms_preview("  Hej   Åsa!\n\n\n\n  Ring   oss.  \t")
    assert text == "Hej Åsa!\n\nRing oss."
    assert (length.encoding, length.units, length.segments) == ("GSM-7", 19, 1)


def test_sms_preview_shows_the_cost_of_a_long_text():
    _, length = sms_preview("Krisrutin " * 20)
    assert (length.segments, length.per_segment) == (2, 153)


def test_templates_have_no_trailing_whitespace_in_sms():
    message = render("generic", "sv", generic())
    assert not re.search(r"[ \t]$", message.sms, re.MULTILINE)
