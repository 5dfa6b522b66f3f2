"""The service's vocabularies in one place: every internal value a page may show (roles, parties,
services, statuses, call outcomes, message kinds, what a message is about, the audit log's
actions, records and fields, where a register change came from) with its plain Swedish label.

Labels are Babel lazy strings, so a page in English shows the English catalogue's words. Templates
use the ``label`` filter (``{{ user.role|label("role") }}``), code :func:`label`. A value without a
label is shown as it is (and tests/test_plain_words.py, which walks every page, fails on it), so a
new value is added here, not worked around in a template. The filters ``month_name`` ("januari
2027") and ``phone`` ("070-123 45 67") are here too: one way to show a month and a phone number.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import phonenumbers
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

VOCABULARIES: dict[str, dict[str, object]] = {
    "role": {
        "admin": _l("Administratör"),
        "team": _l("Välfärdsteknikteamet"),
        "on_call": _l("Tjänsteman i beredskap (TIB)"),
        "provider": _l("Kontaktperson hos utförare"),
        "alarm_operator": _l("Larmoperatör"),
        "supplier": _l("Leverantör"),
    },
    "party": {"team": _l("Välfärdsteknikteamet"), "on_call": _l("Tjänsteman i beredskap")},
    "service": {
        "camera_supervision": _l("Kameratillsyn"),
        "alarms": _l("Trygghetslarm"),
        "keyless_locks": _l("Nyckelfria lås"),
        "time_registration": _l("Tidsregistrering"),
    },
    "provider_kind": {"municipal": _l("Kommunal"), "private": _l("Privat")},
    "call_outcome": {
        "reached": _l("Nådd"),
        "confirmed": _l("Nådd och bekräftade"),
        "corrections": _l("Nådd, uppgifter rättade"),
        "not_reached": _l("Inte nådd"),
        "wrong_number": _l("Fel nummer"),
    },
    "answer": {"yes": _l("Ja, uppgifterna stämmer"), "no": _l("Nej, något behöver ändras")},
    "correction_status": {
        "pending": _l("Väntar på granskning"),
        "accepted": _l("Godkänd"),
        "rejected": _l("Avvisad"),
        "superseded": _l("Ersatt av ett senare svar"),
    },
    "channel": {"email": _l("E-post"), "sms": _l("SMS"), "call": _l("Samtal"), "imap": _l("Inkommande e-post")},
    "message_status": {
        "queued": _l("I kö"),
        "sending": _l("Skickas"),
        "sent": _l("Skickat"),
        "delivered": _l("Levererat"),
        "undelivered": _l("Kom inte fram"),
        "failed": _l("Misslyckades"),
        "cancelled": _l("Avbrutet"),
    },
    "message_kind": {
        "check.invite": _l("Inbjudan till månadskontroll"),
        "check.reminder": _l("Påminnelse om månadskontroll"),
        "check.reply_yes": _l("Svar på sms: uppgifterna stämmer"),
        "check.reply_no": _l("Svar på sms: något ska ändras"),
        "check.reply_help": _l("Svar på sms: hjälp"),
        "check.reply_closed": _l("Svar på sms: kontrollen är stängd"),
        "crisis.alert": _l("Larm om ny störning"),
        "crisis.letter": _l("Brev om störning"),
        "crisis.handover": _l("Överlämning av störning"),
        "crisis.handover_given": _l("Besked om lämnad överlämning"),
        "crisis.estimate.request": _l("Fråga till leverantören om ny prognos"),
        "crisis.supplier_update": _l("Besked från leverantören"),
        "crisis.followup.call_list": _l("Ringlista för brev utan kvittens"),
        "crisis.followup.expected_end": _l("Påminnelse: beräknat slut har passerat"),
        "crisis.followup.update_due": _l("Påminnelse: dags för en uppdatering"),
        "crisis.visit.alert": _l("Besked om fysiska besök"),
        "crisis.visit.escalation": _l("Utförare har inte kvitterat besök"),
        "crisis.visit.overdue": _l("Försenade besök"),
        "generic": _l("Meddelande"),
        "oncall.reminder": _l("Påminnelse: larmet är inte kvitterat"),
        "oncall.test": _l("Test av larmnummer"),
        "test.hello": _l("Testmeddelande"),
    },
    # What a message is about (Message.ref_type): the deliveries page's "Gäller".
    "reference": {
        "letter": _l("Brev om störning"),
        "alert": _l("Larm om störning"),
        "incident": _l("Störning"),
        "monthly_check": _l("Månadskontroll"),
        "visit_alert": _l("Besked om fysiska besök"),
        "staff_test": _l("Test av larmnummer"),
    },
    # Why a person was alerted (Alert.reason, before its ":<n>").
    "alert_reason": {
        "routed": _l("Ny störning"),
        "handover": _l("Överlämning"),
        "update_due": _l("Dags för en uppdatering"),
        "expected_end": _l("Beräknat slut har passerat"),
        "call_list": _l("Utförare på ringlistan"),
        "supplier_update": _l("Besked från leverantören"),
        "visit_call_list": _l("Utförare på ringlistan för besök"),
        "visit_overdue": _l("Försenade besök"),
    },
    # How an alert was acknowledged (the timeline: "Kvitterad via sms").
    "via": {"web": _l("på webben"), "sms": _l("via sms"), "call": _l("via samtal")},
    # A call's status as Twilio reports it (the paging's calls on the timeline).
    "call_status": {
        "queued": _l("i kö"),
        "initiated": _l("rings upp"),
        "ringing": _l("ringer"),
        "in-progress": _l("besvarat"),
        "answered": _l("besvarat"),
        "completed": _l("avslutat"),
        "busy": _l("upptaget"),
        "no-answer": _l("inget svar"),
        "failed": _l("misslyckades"),
        "canceled": _l("avbrutet"),
    },
    "incident_status": {
        "new": _l("Ny, inte kvitterad"),
        "open": _l("Kvitterad, pågår"),
        "not_relevant": _l("Stängd: inte relevant"),
        "resolved": _l("Åtgärdad"),
    },
    "inbound_email_reason": {
        "unknown_sender": _l("Avsändaren är ingen känd leverantörsadress"),
        "too_big": _l("Meddelandet är större än 10 MB"),
        "unparsable": _l("Meddelandet kunde inte läsas"),
        "refused": _l("E-postmottagningen tog inte emot det"),
    },
    "notice_source": {"form": _l("Formulär"), "api": _l("API"), "email": _l("E-post")},
    "visit_status": {"open": _l("Öppet"), "done": _l("Gjort"), "not_done": _l("Inte gjort")},
    "change_action": {
        "created": _l("Skapad"),
        "updated": _l("Ändrad"),
        "deactivated": _l("Inaktiverad"),
        "reactivated": _l("Aktiverad igen"),
    },
    "change_source": {
        "team": _l("Registersidan"),
        "api": _l("API"),
        "import": _l("CSV-import"),
        "check": _l("Månadskontroll"),
        "review": _l("Granskad rättelse"),
        "call": _l("Telefonsamtal"),
        "demo": _l("Demodata"),
    },
    "audit_action": {
        "view": _l("Visade"),
        "create": _l("Skapade"),
        "update": _l("Ändrade"),
        "delete": _l("Tog bort"),
        "export": _l("Exporterade"),
        "login": _l("Loggade in"),
        "logout": _l("Loggade ut"),
        "purge": _l("Gallrade"),
        "test": _l("Testade"),
    },
    "audit_actor": {
        "user": _l("Användare"),
        "token": _l("API-nyckel"),
        "link": _l("Personlig länk"),
        "system": _l("Systemet"),
    },
    # The audit log's records (AuditEntry.entity).
    "record": {
        "audit_log": _l("Granskningslogg"),
        "paging_step": _l("Larmregel"),
        "alert": _l("Larm"),
        "api_token": _l("API-nyckel"),
        "check": _l("Månadskontroll"),
        "check_correction": _l("Rättelse"),
        "check_recipient": _l("Mottagare av månadskontroll"),
        "client": _l("Kameratillsynsklient"),
        "contact": _l("Kontaktperson"),
        "failure": _l("Utebliven tillsyn"),
        "handover": _l("Överlämning"),
        "inbound_email": _l("Inkommande e-post"),
        "incident": _l("Störning"),
        "letter_receipt": _l("Kvittens av brev"),
        "letter": _l("Kvittens av brev"),
        "message": _l("Meddelande"),
        "notice": _l("Driftmeddelande"),
        "provider": _l("Utförare"),
        "register": _l("Kontaktregistret"),
        "retention": _l("Gallring"),
        "roster": _l("Beredskapslista"),
        "session": _l("Inloggning"),
        "sms_reply": _l("Sms-svar"),
        "supplier": _l("Leverantör"),
        "user": _l("Användare"),
        "visit": _l("Besök"),
        "visit_alert": _l("Besked om fysiska besök"),
    },
    # Field names, as the audit log and the register extract name them.
    "field": {
        "alert_id": _l("besked om besök"),
        "acknowledged_by": _l("kvitterad av (namn)"),
        "added_at": _l("tillagd"),
        "added_reason": _l("skäl till att den lades till"),
        "check_id": _l("månadskontroll"),
        "created_at": _l("skapad"),
        "created_contact_id": _l("skapad kontaktperson"),
        "email_failing_since": _l("e-postadressen fungerar inte sedan"),
        "email_failure_reason": _l("varför e-postadressen inte fungerar"),
        "failed_logins": _l("misslyckade inloggningar"),
        "first_failed_at": _l("första misslyckade inloggning"),
        "local_routines_started": _l("lokala rutiner startade"),
        "locked_until": _l("låst till"),
        "marked_at": _l("markerat"),
        "mobile_failing_since": _l("mobilnumret fungerar inte sedan"),
        "mobile_failure_reason": _l("varför mobilnumret inte fungerar"),
        "reject_reason": _l("skäl för avvisning"),
        "reminders_sent": _l("påminnelser"),
        "reviewed_at": _l("granskad"),
        "reviewed_by_id": _l("granskad av"),
        "totp_last_step": _l("senast använda kod från appen"),
        "totp_recovery": _l("reservkoder"),
        "totp_secret": _l("nyckel för tvåstegsverifiering"),
        "updated_at": _l("ändrad"),
        "call_listed_at": _l("satt på ringlistan"),
        "overdue_alerted_at": _l("försening meddelad"),
        "resent_at": _l("skickat igen"),
        "acknowledged_at": _l("kvitterad"),
        "acknowledged_by_id": _l("kvitterad av"),
        "local_routines": _l("lokala rutiner"),
        "done_at": _l("gjort"),
        "not_done_reason": _l("skäl till att besöket inte gjordes"),
        "marked_by": _l("markerat av"),
        "answer": _l("svar"),
        "answered_at": _l("svarade"),
        "answered_via": _l("svarade via"),
        "area": _l("område"),
        "call_note": _l("anteckning om samtalet"),
        "call_outcome": _l("samtalets utfall"),
        "call": _l("samtal"),
        "call_attempts": _l("samtalsförsök"),
        "called_at": _l("ringd"),
        "called_by_id": _l("ringd av"),
        "client_id": _l("klient"),
        "comment": _l("kommentar"),
        "contact_id": _l("kontaktperson"),
        "display_name": _l("visat namn"),
        "due_at": _l("planerad tid"),
        "email": _l("e-postadress"),
        "failure_id": _l("utebliven tillsyn"),
        "first_opened_at": _l("öppnade länken"),
        "incident_id": _l("störning"),
        "is_active": _l("aktiv"),
        "kind": _l("sort"),
        "last_login_at": _l("senaste inloggning"),
        "minute": _l("minut"),
        "letter_id": _l("brev"),
        "mobile": _l("mobilnummer"),
        "name": _l("namn"),
        "nonce": _l("länkens nyckel"),
        "organisation_number": _l("organisationsnummer"),
        "password_hash": _l("lösenord"),
        "position": _l("ordning"),
        "proposed": _l("föreslagna ändringar"),
        "provider_id": _l("utförare"),
        "recipient_id": _l("mottagare"),
        "reference": _l("klientens beteckning"),
        "role": _l("roll"),
        "role_title": _l("roll hos utföraren"),
        "services": _l("tjänster"),
        "sms": _l("sms"),
        "session_version": _l("inloggningar"),
        "status": _l("status"),
        "submitted_at": _l("skickad"),
        "submitted_via": _l("skickad via"),
        "user_id": _l("användare"),
        "username": _l("användarnamn"),
    },
    # The audit log's detail keys.
    "audit_detail": {
        "fields": _l("Fält"),
        "deliveries": _l("Gäller"),
        "history": _l("Historik"),
        "reason": _l("Skäl"),
        "count": _l("Antal"),
        "month": _l("Månad"),
        "format": _l("Format"),
        "rows": _l("Rader"),
        "everywhere": _l("Överallt"),
        "sessions": _l("Inloggningar"),
        "factor": _l("Andra steget"),
        "page": _l("Sida"),
        "searched": _l("Sökning"),
        "check": _l("Månadskontroll"),
        "calls": _l("Ringlista"),
        "provider_id": _l("Utförare"),
        "before": _l("Före"),
    },
    "audit_value": {"recovery_code": _l("reservkod"), "totp": _l("kod från appen")},
}


def label(value, vocabulary: str) -> str:
    """``value``'s label in ``vocabulary`` in the page's language; the value itself when unknown."""
    if value is None or value == "":
        return ""
    text = VOCABULARIES[vocabulary].get(str(value))
    return str(value) if text is None else str(text)


def reason_label(reason: str | None) -> str:
    """An alert's reason ("update_due:2") as words: the part before the colon is the kind."""
    return label((reason or "").partition(":")[0], "alert_reason")


def labels(values, vocabulary: str, separator: str = ", ") -> str:
    """Several values (a list, or text separated by commas) as their labels."""
    if isinstance(values, str):
        values = [item.strip() for item in values.split(",") if item.strip()]
    return separator.join(label(item, vocabulary) for item in values or ())


def _detail_value(key: str, value) -> str:
    if key == "fields" and isinstance(value, list):
        return labels(value, "field")
    if isinstance(value, bool):
        return _("ja") if value else _("nej")
    if isinstance(value, list):
        return ", ".join(_detail_value(key, item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{label(k, 'field')}: {_detail_value(k, v)}" for k, v in value.items())
    if key == "deliveries" and isinstance(value, str) and ":" in value:
        ref_type, _sep, ref_id = value.partition(":")
        return f"{label(ref_type, 'reference')} {ref_id}"
    return label(value, "audit_value")


def audit_actor(actor_kind: str, actor_id) -> str:
    """Who did it: "Användare 3", "Personlig länk: Kvittens av brev 7", "Systemet"."""
    text = label(actor_kind, "audit_actor")
    if actor_id is None or actor_id == "":
        return text
    kind, _sep, number = str(actor_id).rpartition(":")
    if kind:
        return f"{text}: {label(kind, 'record')} {number}"
    return f"{text} {actor_id}"


def audit_detail(detail) -> str:
    """An audit entry's details as a person reads them: "Fält: namn, e-postadress"."""
    if not detail:
        return ""
    if not isinstance(detail, dict):
        return str(detail)
    return "; ".join(f"{label(key, 'audit_detail')}: {_detail_value(key, value)}" for key, value in detail.items())


def change_value(value, field_name: str) -> str:
    """A register history value (stored as text) as a person reads it: services and kinds by their
    names, phone numbers in the people's format, "–" for nothing."""
    if value is None or value == "":
        return "–"
    if field_name == "services":
        return labels(value, "service")
    if field_name == "kind":
        return label(value, "provider_kind")
    if field_name == "mobile":
        return phone(value)
    if field_name == "is_active":
        return (
            _("ja") if value in ("ja", "true", True) else _("nej") if value in ("nej", "false", False) else str(value)
        )
    return str(value)


def month_name(value) -> str:
    """A month in words in the page's language: "januari 2027" ("January 2027"); accepts a date
    or datetime, or "YYYY-MM" text (shown as it is when it is not a month)."""
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{4})-(\d{2})(?:-\d{2})?", value.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            return value
        value = date(int(match.group(1)), int(match.group(2)), 1)
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        return "" if value is None else str(value)
    text = format_date(value, "LLLL yyyy")
    # Swedish writes month names in lower case, English capitalised
    return text if str(get_locale() or "sv").startswith("sv") else text[:1].upper() + text[1:]


def phone(value) -> str:
    """A phone number as people read it: +46701234567 → 070-123 45 67 (Swedish numbers in the
    national form, others internationally: +47 90 00 00 00); text that is no number as it is.
    ``tel:`` links keep the E.164 form."""
    if not value:
        return ""
    text = str(value).strip()
    try:
        number = phonenumbers.parse(text, "SE")
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(number):
        return text
    if number.country_code == 46:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def init_app(app) -> None:
    app.add_template_filter(label, "label")
    app.add_template_filter(labels, "labels")
    app.add_template_filter(reason_label, "reason_label")
    app.add_template_filter(audit_detail, "audit_detail")
    app.add_template_global(audit_actor, "audit_actor")
    app.add_template_filter(change_value, "change_value")
    app.add_template_filter(month_name, "month_name")
    app.add_template_filter(phone, "phone")
