"""Addresses as people type them: Swedish mobile numbers to E.164, e-mail addresses normalised."""

import pytest

from notifications.addresses import AddressError, normalize_email, normalize_mobile


@pytest.mark.parametrize(
    "typed",
    [
        "070-174 06 05",
        "0701740605",
        "070 174 06 05",
        "+46 70 174 06 05",
        "+46701740605",
        "0046701740605",
        "0046 70-174 06 05",
        "  070-174 06 05  ",
        "(070) 174 06 05",
    ],
)
def test_swedish_mobile_numbers_in_every_usual_form_become_e164(typed):
    assert normalize_mobile(typed) == "+46701740605"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("073-123 45 67", "+46731234567"),
        ("076-123 45 67", "+46761234567"),
        ("+358 40 123 4567", "+358401234567"),  # a Finnish mobile
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_other_mobile_numbers_are_accepted(typed, expected):
    assert normalize_mobile(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "08-123 456 78",  # Stockholm landline
        "031-123 45 67",  # Göteborg landline
        "010-123 45 67",  # 010: a company number
        "0771-123 456",  # 077: shared-cost service number
    ],
)
def test_numbers_that_cannot_receive_sms_are_refused_with_a_reason(typed):
    with pytest.raises(AddressError, match="inte ett mobilnummer"):
        normalize_mobile(typed)


@pytest.mark.parametrize("typed", ["", "   ", "abc", "070", "070-174 06 05 99 99", "0741234567", "+46", "112"])
def test_invalid_numbers_are_refused_with_an_example_of_a_good_one(typed):
    with pytest.raises(AddressError) as caught:
        normalize_mobile(typed)
    assert "070-123 45 67" in str(caught.value)


def test_address_error_is_a_value_error():
    assert issubclass(AddressError, ValueError)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("anna.svensson@kommun.example.se", "anna.svensson@kommun.example.se"),
        ("  anna.svensson@kommun.example.se ", "anna.svensson@kommun.example.se"),
        ("Anna.Svensson@Kommun.Example.SE", "Anna.Svensson@kommun.example.se"),  # the domain is case-insensitive
        ("info+kris@omsorg-ab.se", "info+kris@omsorg-ab.se"),
        # A domain with å/ä/ö is kept in its ASCII (IDNA) form, which every server delivers to.
        ("info@växjö.se", "info@xn--vxj-qla6g.se"),
    ],
)
def test_email_addresses_are_normalised(typed, expected):
    assert normalize_email(typed) == expected


def test_email_with_swedish_letters_before_the_at_sign_is_refused():
    # Decided: such addresses need SMTPUTF8, which many receiving servers do not offer.
    with pytest.raises(AddressError, match="å, ä, ö"):
        normalize_email("åsa.öberg@kommun.example.se")


@pytest.mark.parametrize(
    "typed",
    ["", "anna", "anna@", "@kommun.se", "anna@kommun", "anna svensson@kommun.se", "anna@@kommun.se", "a@localhost"],
)
def test_invalid_email_addresses_are_refused_in_swedish(typed):
    with pytest.raises(AddressError) as caught:
        normalize_email(typed)
    assert "e-postadress" in str(caught.value).lower()
