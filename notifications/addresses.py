"""Checking and normalising the addresses people type: mobile numbers to E.164, e-mail addresses.

Messages are in Swedish: they are shown beside the form field the address came from.
"""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType

MOBILE_EXAMPLE = "ange t.ex. 070-123 45 67 eller +46701234567"
EMAIL_EXAMPLE = "ange t.ex. fornamn.efternamn@kommun.se"

# FIXED_LINE_OR_MOBILE is what phonenumbers answers for countries whose numbers do not tell
# (e.g. the USA); Swedish mobile numbers are always MOBILE.
_SMS_CAPABLE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class AddressError(ValueError):
    """An address that cannot be used; the message is for the person who typed it."""


def normalize_mobile(text: str, region: str = "SE") -> str:
    """The mobile number in ``text`` in E.164 (+46701740605); national numbers are read as ``region``'s."""
    text = (text or "").strip()
    if not text:
        raise AddressError(f"Ange ett mobilnummer: {MOBILE_EXAMPLE}")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise AddressError(f"Mobilnumret är inte giltigt: {MOBILE_EXAMPLE}") from None
    if not phonenumbers.is_valid_number(number):
        raise AddressError(f"Mobilnumret är inte giltigt: {MOBILE_EXAMPLE}")
    if phonenumbers.number_type(number) not in _SMS_CAPABLE:
        raise AddressError(
            f"Numret är inte ett mobilnummer och kan inte ta emot SMS (fasta nummer, 010- och 077-nummer "
            f"fungerar inte): {MOBILE_EXAMPLE}"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(text: str) -> str:
    """The e-mail address in ``text``, normalised (domain in lower case, ASCII form).

    Addresses with å, ä or ö before the @ are refused: many mail servers cannot deliver them
    (they need SMTPUTF8). A domain with å, ä or ö is accepted and returned in its ASCII form
    (``info@xn--vxj-qla6g.se`` for ``info@växjö.se``), which every server can deliver to.
    """
    text = (text or "").strip()
    if not text:
        raise AddressError(f"Ange en e-postadress: {EMAIL_EXAMPLE}")
    if "@" not in text:
        raise AddressError(f"E-postadressen saknar @: {EMAIL_EXAMPLE}")
    if not text.rpartition("@")[0].isascii():
        raise AddressError(f"E-postadressen kan inte ha å, ä, ö eller andra specialtecken före @: {EMAIL_EXAMPLE}")
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise AddressError(f"E-postadressen är inte giltig: {EMAIL_EXAMPLE}") from None
    return result.ascii_email or result.normalized
