"""One way to show a phone number, a month and an internal value (core.labels)."""

from __future__ import annotations

import pytest

from core.labels import audit_detail, change_value, label, month_name, phone


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+46701234567", "070-123 45 67"),  # a Swedish mobile
        ("+46812345678", "08-123 456 78"),  # Stockholm
        ("+46311234567", "031-123 45 67"),
        ("0701234567", "070-123 45 67"),  # typed nationally
        ("+4790000000", "+47 90 00 00 00"),  # abroad: international
        ("anna@norr.se", "anna@norr.se"),  # an address is no number
        ("", ""),
        (None, ""),
    ],
)
def test_a_phone_number_is_shown_as_people_read_it(stored, shown):
    assert phone(stored) == shown


@pytest.mark.parametrize(
    ("language", "value", "shown"),
    [
        ("sv", "2027-01", "januari 2027"),
        ("en", "2027-01", "January 2027"),
        ("sv", "2026-12", "december 2026"),
        ("sv", "2027-13", "2027-13"),  # not a month: as it is
        ("sv", "GSM-störning", "GSM-störning"),
    ],
)
def test_a_month_is_shown_in_words_in_the_pages_language(app, language, value, shown):
    with app.test_request_context(f"/?lang={language}"):
        assert month_name(value) == shown


def test_labels_follow_the_pages_language_and_show_unknown_values_as_they_are(app):
    with app.test_request_context("/?lang=sv"):
        assert label("not_reached", "call_outcome") == "Inte nådd"
        assert label("check.invite", "message_kind") == "Inbjudan till månadskontroll"
        assert change_value("camera_supervision,alarms", "services") == "Kameratillsyn, Trygghetslarm"
        assert audit_detail({"fields": ["email", "is_active"]}) == "Fält: e-postadress, aktiv"
        assert label("something_new", "call_outcome") == "something_new"
    with app.test_request_context("/?lang=en"):
        assert label("not_reached", "call_outcome") == "Not reached"
        assert change_value("camera_supervision,alarms", "services") == "Camera supervision, Safety alarms"
