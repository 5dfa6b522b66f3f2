"""The text boundary at the door: every form field and query parameter of every request passes
:func:`core.text.clean` before a view sees it.

One ``before_request`` hook (after the access rules', so a refused request is refused for its
access first) reads the request's form and query string and replaces them with the cleaned
values (NFC, line breaks as ``\\n``). A value the boundary refuses stops the request: 400 with
every refused field named, a Swedish page (:data:`FIELD_LABELS` gives the fields' words) or, under
``/api/``, ``{"error": ..., "fields": {name: message}}``. Nothing is stored: no view has run. A
path holding such a character answers 404 (no route has one). Each form value may be at most
:data:`MAX_FORM_VALUE` characters; the fields' own rules set tighter limits.

Not touched: password fields (hashed, never shown: a password is what the user typed, byte for
byte) and views marked :func:`raw_text`, which verify a signature over the raw values and clean
what they use themselves (Twilio's webhooks). JSON bodies are read by :func:`core.text.load_json`
and e-mails by their intake, with the same rule.
"""

from __future__ import annotations

import re

from flask import abort, current_app, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest

from core import text

MAX_FORM_VALUE = 50_000
_UNTOUCHED = re.compile(r"password", re.IGNORECASE)
_INDEXED = re.compile(r"^(?P<base>.+?)-\d+$")  # "email-3": one field per row of a table
NEW_PREFIX = "new_"  # the check's correction form: the proposed new contact person's fields

# The service's form fields and query parameters in the words of its pages.
FIELD_LABELS = {
    "action": _l("Åtgärd"),
    "active": _l("Aktiv"),
    "actor": _l("Aktör"),
    "answer": _l("Svar"),
    "apply_local_routines": _l("Lokala rutiner"),
    "area": _l("Område"),
    "body": _l("Text"),
    "code": _l("Kod"),
    "comment": _l("Kommentar"),
    "complete": _l("Komplett lista"),
    "confirm": _l("Bekräftelse"),
    "csrf_token": _l("Formulärets kontrollkod"),
    "direction": _l("Riktning"),
    "done_at": _l("Tid för besöket"),
    "email": _l("E-postadress"),
    "sender_addresses": _l("Avsändaradresser"),
    "ends_at": _l("Slut"),
    "entity": _l("Objekt"),
    "entity_id": _l("Objektets id"),
    "expected_end": _l("Beräknat slut"),
    "format": _l("Format"),
    "from": _l("Från och med datum"),
    "incident": _l("Störning"),
    "is_active": _l("Aktiv"),
    "kind": _l("Typ"),
    "lang": _l("Språk"),
    "local_routines": _l("Har ni startat era lokala rutiner?"),
    "minute": _l("Minut"),
    "mobile": _l("Mobilnummer"),
    "month": _l("Månad"),
    "name": _l("Namn"),
    "next": _l("Nästa sida"),
    "note": _l("Anteckning"),
    "organisation_number": _l("Organisationsnummer"),
    "outcome": _l("Utfall"),
    "override_user_id": _l("Person i beredskap"),
    "page": _l("Sida"),
    "planned": _l("Planerat arbete"),
    "problems": _l("Bara problem"),
    "provider_id": _l("Utförare"),
    "provider_ids": _l("Utförare"),
    "providers": _l("Berörda utförare"),
    "q": _l("Sök"),
    "reason": _l("Motivering"),
    "receipts": _l("Kvittenser"),
    "recovery_code": _l("Reservkod"),
    "relevant": _l("Relevant"),
    "revoked": _l("Återkallade"),
    "role_title": _l("Roll"),
    "service": _l("Tjänst"),
    "services": _l("Tjänster"),
    "starts_at": _l("Start"),
    "status": _l("Status"),
    "subject": _l("Rubrik"),
    "supplier": _l("Leverantör"),
    "supplier_id": _l("Leverantör"),
    "title": _l("Rubrik"),
    "to": _l("Till och med datum"),
    "user_id": _l("Person"),
    "username": _l("Användarnamn"),
    "visa": _l("Visa"),
    "visit": _l("Besök"),
    "rows": _l("Rader"),
    "sms": _l("Sms"),
    "call": _l("Samtal"),
    "channel": _l("Kanal"),
    "week": _l("Vecka"),
}


def raw_text(view):
    """Mark a view that reads its own raw form (a signature covers the values as sent); it must
    clean what it uses with :mod:`core.text`."""
    view.raw_text = True
    return view


def field_label(name: str) -> str:
    """A form field's name in the words of the page ("new_email" → "E-postadress (ny kontaktperson)")."""
    new = name.startswith(NEW_PREFIX)
    base = name.removeprefix(NEW_PREFIX)
    indexed = _INDEXED.match(base)
    if indexed and indexed.group("base") in FIELD_LABELS:
        base = indexed.group("base")
    label = str(FIELD_LABELS.get(base, f"”{text.scrub(name, lines=False)}”"))
    return str(_l("%(label)s (ny kontaktperson)", label=label)) if new else label


class TextRefusedError(BadRequest):
    """A request with refused text: ``problems`` maps each field to what is wrong (Swedish)."""

    def __init__(self, problems: dict[str, str]):
        super().__init__(description=str(_l("Texten kunde inte tas emot.")))
        self.problems = problems


def _cleaned(values: ImmutableMultiDict, problems: dict[str, str]) -> ImmutableMultiDict:
    pairs = []
    for name, value in values.items(multi=True):
        if _UNTOUCHED.search(name):
            pairs.append((name, value))
            continue
        try:
            pairs.append((text.clean(name, field=name), text.clean(value, field=name, max_length=MAX_FORM_VALUE)))
        except text.TextRefused as error:
            problems.setdefault(text.scrub(name, lines=False), error.message)
    return ImmutableMultiDict(pairs)


def guard_request():
    """``before_request`` hook: clean the query string and the form, or refuse the request."""
    if text.first_forbidden(request.path):
        abort(404)
    if request.endpoint is None:  # no such route: Flask answers 404/405
        return None
    if getattr(current_app.view_functions.get(request.endpoint), "raw_text", False):
        return None
    problems: dict[str, str] = {}
    args = _cleaned(request.args, problems)
    form = _cleaned(request.form, problems) if request.method not in ("GET", "HEAD", "OPTIONS") else None
    if problems:
        raise TextRefusedError(problems)
    request.args = args
    if form is not None:
        request.form = form
    return None


def _refused(error: TextRefusedError):
    if request.path.startswith("/api/"):
        response = jsonify(error=error.description, fields=error.problems)
        response.status_code = error.code
        return response
    settings = current_app.extensions["krisrutin.settings"]
    fields = [(field_label(name), message) for name, message in error.problems.items()]
    page = render_template(
        "text_refused.html", fields=fields, team_email=settings.team_email, team_mobile=settings.team_mobile
    )
    return page, error.code


def init_app(app) -> None:
    """Install the hook (call after the access rules' ``init_app``) and the refusal's answer."""
    app.before_request(guard_request)
    app.register_error_handler(TextRefusedError, _refused)
