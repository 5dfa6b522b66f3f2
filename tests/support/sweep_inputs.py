"""The inputs every route reads, for tests/test_route_sweep.py: kept by hand from the views and
their templates (``name="..."``) and, for the API, from its OpenAPI description (which the sweep
compares with this table). ``q:`` is the query string, ``f:`` the form, ``j:`` the JSON body
(``letter.subject`` nested, ``clients[].reference`` in a list's first item); ``f:file`` is an
upload and the e-mail intake's ``j:email`` stands for its whole body (``upload``, ``raw``). A
forwarded e-mail and an inbound SMS are ``stored`` whatever they hold (the text boundary scrubs
what it refuses elsewhere, since nobody could be told): for them only the answer is checked.

A field's kind says which odd values it must refuse (:func:`odd_for`): ids, numbers, choices and
dates all of them (a rotation week may be negative, an ``optional`` field empty); free text only
those that are not text: 10 kB beyond its limit (not for a letter's body), NUL, the right-to-left
override, and a lone surrogate where JSON can carry one (a form cannot: werkzeug keeps invalid
UTF-8 as its %-escapes, which are text); a ``STORED`` field every value. A ``HINT`` takes any
value (a checkbox is off unless "on", a redirect target falls back to the default page): it rides
along only in a GET or in a request some other field makes wrong, since a request no odd value
makes wrong may rightly change something.

``steer`` gives fixed values that lead a view to the code that reads the swept fields (a roster
change of kind "swap" reads the week; a notice with a title, a text and a service reaches its
letter); each steer is swept on its own, and a field steered to None is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ID, NUMBER, SIGNED, CHOICE, DATE = "id", "number", "signed", "choice", "date"
TEXT, LONG_TEXT, STORED, HINT = "text", "long text", "stored", "hint"
NUMBERS = (ID, NUMBER, SIGNED)
STRICT = (ID, NUMBER, SIGNED, CHOICE, DATE, STORED)
TEXT_ODD = ("ten_kb", "nul", "rtl_override")


def optional(kind: str) -> str:
    """A field that may be left empty (no supplier, no end time): empty is not odd for it."""
    return kind + "?"


def odd_for(kind: str, value_name: str, in_json: bool) -> bool:
    """Whether a field of ``kind`` must refuse the odd value ``value_name``."""
    if kind.endswith("?"):
        if value_name == "empty":
            return False
        kind = kind[:-1]
    if kind == SIGNED:  # a rotation week before the roster's anchor is negative
        return value_name != "negative"
    if kind in STRICT:
        return True
    if kind in (TEXT, LONG_TEXT):
        if kind == LONG_TEXT and value_name == "ten_kb":  # a letter may well be 10 kB long
            return False
        return value_name in TEXT_ODD or (in_json and value_name == "surrogate")
    return False


@dataclass(frozen=True)
class Inputs:
    fields: dict[str, str] = field(default_factory=dict)
    steer: tuple[dict[str, str | None], ...] = ({},)  # None: the field is left out
    upload: Callable[[str], bytes] | None = None  # the file of f:file, made from the odd value
    raw: Callable[[str], tuple[str, bytes]] | None = None  # a body of its own: (content type, bytes)
    stored: bool = False  # text nobody can be asked to correct: kept, scrubbed, whatever it holds


def _register_csv(value: str) -> bytes:
    header = "Utförare;Organisationsnummer;Utförartyp;Namn;Roll;Mobil;E-post;Tjänster;Aktiv"
    return (header + "\n" + ";".join([value] * 9) + "\n").encode("utf-8", "surrogatepass")


def _clients_csv(value: str) -> bytes:
    header = "Referens;Utförare;Område;Schema;Undantag;Aktiv"
    return (header + "\n" + ";".join([value] * 6) + "\n").encode("utf-8", "surrogatepass")


def _email(value: str) -> tuple[str, bytes]:
    text = (
        "From: drift@telia.se\r\nTo: valfardsteknik@kommun.example.se\r\n"
        f"Subject: {value}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{value}\r\n"
    )
    return "message/rfc822", text.encode("utf-8", "surrogatepass")


PAGING = {"q:limit": NUMBER, "q:offset": NUMBER}
AUDIT_FILTERS = {
    "q:from": DATE,
    "q:to": DATE,
    "q:actor": TEXT,
    "q:action": TEXT,
    "q:entity": TEXT,
    "q:entity_id": TEXT,
}
CONTACT_FORM = {"f:name": TEXT, "f:role_title": TEXT, "f:mobile": TEXT, "f:email": TEXT, "f:services": CHOICE}
PROVIDER_FORM = {"f:name": TEXT, "f:organisation_number": NUMBER, "f:kind": CHOICE}
PROVIDER_JSON = {"j:name": TEXT, "j:organisation_number": NUMBER, "j:kind": CHOICE, "j:is_active": CHOICE}
CONTACT_JSON = {
    "j:name": TEXT,
    "j:role_title": TEXT,
    "j:mobile": TEXT,
    "j:email": TEXT,
    "j:services": CHOICE,
    "j:is_active": CHOICE,
}
NOTICE_FORM = {
    "f:title": TEXT,
    "f:body": LONG_TEXT,
    "f:service": CHOICE,
    "f:supplier_id": optional(ID),
    "f:planned": HINT,
    "f:starts_at": optional(DATE),
    "f:expected_end": optional(DATE),
    "f:providers": CHOICE,
    "f:provider_ids": ID,
    "f:area": TEXT,
}
A_NOTICE = {"f:title": "GSM-störning", "f:body": "Telia ringde.", "f:service": "camera_supervision"}
A_JSON_NOTICE = {"j:title": "GSM-störning", "j:body": "Telia ringde.", "j:service": "camera_supervision"}
NOTICE_STEER = ({}, {**A_NOTICE, "f:providers": "chosen"})
CALL = {"f:outcome": CHOICE, "f:note": TEXT}
CALL_STEER = ({}, {"f:outcome": "not_reached"})
# A call that did not reach the contact reads no contact details: only the note.
CHECK_CALL_STEER = ({}, {"f:outcome": "not_reached", **dict.fromkeys(CONTACT_FORM)})
VISIT_MARK = {
    "f:visit": ID,
    "f:name": TEXT,
    "f:outcome": CHOICE,
    "f:done_at": DATE,
    "f:reason": CHOICE,
    "f:comment": TEXT,
}
MARK_STEER = ({}, {"f:visit": "{visit_id}", "f:outcome": "not_done", "f:reason": "other"})
RENEW = {"f:next": HINT, "q:next": HINT}  # the GET asks first, the POST renews
A_MOBILE = ({}, {"f:mobile": "+46701000077"})
A_KIND = ({}, {"f:kind": "municipal"})
NOTHING = Inputs()

INPUTS: dict[str, Inputs] = {
    "account.change_password": Inputs(
        {"f:current_password": TEXT, "f:new_password": TEXT, "f:new_password_again": TEXT}
    ),
    "account.logout_everywhere": NOTHING,
    "account.page": NOTHING,
    "accounts.index": NOTHING,
    "accounts.login": Inputs({"q:next": HINT, "q:expired": HINT, "f:username": TEXT, "f:password": TEXT}),
    "accounts.login_code": Inputs({"f:code": NUMBER, "f:recovery_code": TEXT}),
    "accounts.logout": NOTHING,
    "accounts.recovery_codes": NOTHING,
    "accounts.totp_enrol": Inputs({"f:code": NUMBER}),
    "audit.export": Inputs(AUDIT_FILTERS),
    "audit.index": Inputs({**AUDIT_FILTERS, "q:page": NUMBER}),
    "check_public.correct": Inputs(
        {
            **CONTACT_FORM,
            "f:comment": TEXT,
            "f:new_name": TEXT,
            "f:new_role_title": TEXT,
            "f:new_mobile": TEXT,
            "f:new_email": TEXT,
            "f:new_services": CHOICE,
        }
    ),
    # Not swept: q:svar (only "sparat" means anything: the thanks after an answer), since every GET of
    # the link records its first opening, which the sweep would take for a change made by the odd value.
    "check_public.link": Inputs({"f:answer": CHOICE}),
    "checks.calls": NOTHING,
    "checks.contact_history": NOTHING,
    "checks.decide": Inputs({"f:action": CHOICE, "f:reason": TEXT}, steer=({}, {"f:action": "reject"})),
    "checks.month": Inputs({"q:visa": CHOICE}),
    "checks.months": NOTHING,
    "checks.record_call": Inputs({**CALL, **CONTACT_FORM}, steer=CHECK_CALL_STEER),
    "checks.report": NOTHING,
    "checks.review": NOTHING,
    "contacts_api.contact_history": Inputs(PAGING),
    "contacts_api.create_contact": Inputs({"j:provider_id": ID, **CONTACT_JSON}),
    "contacts_api.create_provider": Inputs(PROVIDER_JSON),
    "contacts_api.get_contact": NOTHING,
    "contacts_api.get_provider": NOTHING,
    "contacts_api.list_contacts": Inputs(
        {"q:provider_id": ID, "q:q": TEXT, "q:active": CHOICE, "q:service": CHOICE, **PAGING}
    ),
    "contacts_api.list_providers": Inputs({"q:q": TEXT, "q:active": CHOICE, "q:has_active_contact": CHOICE, **PAGING}),
    "contacts_api.provider_history": Inputs(PAGING),
    "contacts_api.update_contact": Inputs(CONTACT_JSON),
    "contacts_api.update_provider": Inputs(PROVIDER_JSON),
    "handovers.acknowledge": NOTHING,
    "handovers.page": NOTHING,
    "health.healthz": NOTHING,
    "health.readyz": NOTHING,
    "incident_export.export_json": NOTHING,
    "incident_export.print_page": NOTHING,
    "incident_report.report": Inputs({"q:month": DATE, "q:format": HINT}),
    "incidents.detail": Inputs({"q:receipts": HINT}),
    "incidents.index": Inputs({"q:status": CHOICE, "q:service": CHOICE, "q:supplier": ID, "q:month": DATE}),
    "letters.assess": Inputs(
        {"f:relevant": CHOICE, "f:apply_local_routines": HINT, "f:reason": TEXT}, steer=({}, {"f:relevant": "no"})
    ),
    "letters.calls": NOTHING,
    "letters.compose": Inputs(
        {"q:kind": CHOICE, "f:subject": TEXT, "f:body": LONG_TEXT, "f:apply_local_routines": HINT, "f:action": CHOICE},
        steer=({}, {"f:action": "send"}, {"q:kind": "update", "f:action": "send", "f:body": "Uppdatering."}),
    ),
    "letters.record_call_view": Inputs(CALL, steer=CALL_STEER),
    "links.check_link": NOTHING,
    "links.renew_alert": Inputs(RENEW),
    "links.renew_check_recipient": Inputs(RENEW),
    "links.renew_receipt": Inputs(RENEW),
    "links.send_check_link": NOTHING,
    "metrics.metrics": NOTHING,
    "notice_api.create_notice": Inputs(
        {
            "j:title": TEXT,
            "j:body": LONG_TEXT,
            "j:service": CHOICE,
            "j:supplier": TEXT,
            "j:supplier_id": optional(ID),
            "j:planned": optional(CHOICE),  # read as "not planned"
            "j:starts_at": optional(DATE),
            "j:expected_end": optional(DATE),
            "j:providers": CHOICE,
            "j:area": TEXT,
            "j:letter.subject": TEXT,
            "j:letter.body": LONG_TEXT,
            "j:letter.apply_local_routines": CHOICE,
        },
        steer=({}, A_JSON_NOTICE, {**A_JSON_NOTICE, "j:letter.subject": "Störning i kameratillsynen"}),
    ),
    "notice_api.create_notice_from_email": Inputs({"j:email": STORED}, raw=_email, stored=True),
    "notice_api.get_notice": NOTHING,
    "notice_api.update_notice": Inputs(
        {"j:area": TEXT, "j:comment": TEXT, "j:expected_end": optional(DATE), "j:resolved_by_supplier": CHOICE}
    ),
    "notices.edit": Inputs(NOTICE_FORM, steer=NOTICE_STEER),
    "notices.new": Inputs(NOTICE_FORM, steer=NOTICE_STEER),
    "notices.original": NOTHING,
    "mail_triage.index": NOTHING,
    "mail_triage.make_notice_view": Inputs({"f:supplier": CHOICE}),
    "mail_triage.dismiss_view": Inputs({"f:reason": TEXT}),
    "notifications.console": NOTHING,
    "notifications.deliveries": NOTHING,
    "openapi.document": NOTHING,
    "privacy.erase_page": Inputs({"f:confirm": CHOICE}),
    "privacy.extract_json": NOTHING,
    "privacy.extract_page": NOTHING,
    "provider_page.page": Inputs({"f:name": TEXT, "f:local_routines": CHOICE}),
    "register.contact_history": NOTHING,
    "register.deactivate_contact": NOTHING,
    "register.deactivate_provider": NOTHING,
    "register.edit_contact": Inputs(CONTACT_FORM, steer=A_MOBILE),
    "register.edit_provider": Inputs(PROVIDER_FORM, steer=A_KIND),
    "register.export_file": NOTHING,
    "register.import_file": Inputs({"f:file": CHOICE}, upload=_register_csv),
    "register.index": Inputs({"q:q": TEXT, "q:status": CHOICE, "q:problems": HINT, "q:page": NUMBER}),
    "register.new_contact": Inputs(CONTACT_FORM, steer=A_MOBILE),
    "register.new_provider": Inputs(PROVIDER_FORM, steer=A_KIND),
    "register.provider": NOTHING,
    "register.provider_history": NOTHING,
    "register.reactivate_contact": NOTHING,
    "register.reactivate_provider": NOTHING,
    "retention.index": NOTHING,
    "alerting.page": NOTHING,
    "alerting.save": Inputs(
        {
            "f:action": CHOICE,
            "f:rows": NUMBER,
            "f:minute-0": NUMBER,
            "f:sms-0": HINT,
            "f:email-0": HINT,
            "f:call-0": HINT,
        },
        steer=({}, {"f:action": "save", "f:rows": "1"}),
    ),
    "alerting.test": Inputs({"f:channel": CHOICE}),
    "roster.add_member": Inputs({"f:user_id": ID}),
    "roster.add_override": Inputs(
        {
            "f:kind": CHOICE,
            "f:override_user_id": ID,
            "f:week": SIGNED,
            "f:starts_at": DATE,
            "f:ends_at": DATE,
            "f:reason": TEXT,
        },
        steer=(
            {},
            {"f:kind": "swap"},
            {"f:kind": "swap", "f:override_user_id": "{on_call_user}"},
            {"f:kind": "exception"},
        ),
    ),
    "roster.contact": Inputs({"f:email": TEXT, "f:mobile": TEXT}),
    "roster.delete_override": NOTHING,
    "roster.feed": NOTHING,
    "roster.move_member": Inputs({"f:direction": CHOICE}),
    "roster.page": NOTHING,
    "roster.set_active": Inputs({"f:active": CHOICE}),
    "routing.acknowledge": NOTHING,
    "static": NOTHING,
    "supervision.clients": Inputs({"q:provider_id": ID, "q:area": TEXT, "q:active": CHOICE}),
    "supervision.export_file": NOTHING,
    "supervision.import_file": Inputs({"f:file": CHOICE, "f:complete": HINT}, upload=_clients_csv),
    "supervision_api.delete_client": NOTHING,
    "supervision_api.list_clients": Inputs({"q:provider_id": ID, "q:area": TEXT, "q:active": CHOICE, **PAGING}),
    "supervision_api.post_failures": Inputs(
        {"j:reference": TEXT, "j:scheduled_at": DATE, "j:reason": TEXT, "j:failures[].reference": TEXT}
    ),
    "supervision_api.put_clients": Inputs(
        {
            "j:clients[].reference": TEXT,
            "j:clients[].provider_id": ID,
            "j:clients[].provider": TEXT,
            "j:clients[].area": TEXT,
            "j:clients[].schedules": CHOICE,
            "j:complete": CHOICE,
        }
    ),
    "suppliers.api_access": NOTHING,
    "suppliers.edit": Inputs({"f:name": TEXT, "f:email": TEXT, "f:sender_addresses": TEXT, "f:is_active": HINT}),
    "suppliers.index": NOTHING,
    "suppliers.new": Inputs({"f:name": TEXT, "f:email": TEXT, "f:sender_addresses": TEXT}),
    "tokens.create": Inputs({"f:user_id": ID, "f:name": TEXT}),
    "tokens.index": Inputs({"q:revoked": HINT}),
    "tokens.revoke": NOTHING,
    "twilio_webhooks.call_gather": Inputs({"q:message": ID, "q:again": HINT, "f:Digits": CHOICE}),
    "twilio_webhooks.call_status": Inputs(
        {"q:message": ID, "f:CallSid": TEXT, "f:CallStatus": CHOICE, "f:ErrorCode": NUMBER}
    ),
    "twilio_webhooks.inbound_sms": Inputs({"f:MessageSid": STORED, "f:From": STORED, "f:Body": STORED}, stored=True),
    "twilio_webhooks.status_callback": Inputs(
        {"q:message": ID, "f:MessageSid": TEXT, "f:MessageStatus": CHOICE, "f:ErrorCode": NUMBER}
    ),
    "visit_page.mark": Inputs(VISIT_MARK, steer=MARK_STEER),
    "visit_page.mine": Inputs({"q:klart": HINT}),
    "visit_page.mine_mark": Inputs(VISIT_MARK, steer=MARK_STEER),
    "visit_page.page": Inputs({"f:name": TEXT, "q:klart": HINT}),
    "visit_report.report": Inputs({"q:incident": ID, "q:month": DATE, "q:format": HINT}),
    "visit_views.calls": NOTHING,
    "visit_views.dashboard": NOTHING,
    "visit_views.record_call_view": Inputs(CALL, steer=CALL_STEER),
    "worktime_api.check_plan": Inputs({"q:month": DATE}),
    "worktime_api.responsible": Inputs({"q:at": DATE}),
}
