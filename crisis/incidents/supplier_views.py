"""The suppliers (Telia, Careium, ...) that send notices: the list, adding and changing one, and
giving one API access (a user with the role ``supplier`` and a token shown once).

Decisions: names are unique ignoring case; the e-mail address is optional and its domain is what
forwarded e-mails are matched by. Sender addresses (one a line, an exact address or ``@domain``)
say which mail in the supplier mailbox is the supplier's; each is checked with
:func:`notifications.addresses.normalize_email` and stored normalised (lower case, the domain in
its ASCII form). A supplier is deactivated, not deleted, so its incidents keep
their supplier. Giving API access again makes a new token for the same user (the old ones keep
working until revoked with ``flask tokens``).
"""

from __future__ import annotations

import re
import unicodedata

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from accounts.access import roles_required
from accounts.models import User
from accounts.roles import Role
from accounts.service import create_token, create_user, get_user_by_username
from core.clock import current_clock
from core.extensions import db
from crisis.incidents.models import Supplier
from notifications.addresses import AddressError, normalize_email

bp = Blueprint("suppliers", __name__)

TEAM = (Role.TEAM, Role.ADMIN)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def clean_supplier(data: dict, *, supplier: Supplier | None = None) -> tuple[dict, dict[str, str]]:
    """The supplier's fields checked: (values, errors)."""
    errors: dict[str, str] = {}
    name = " ".join((data.get("name") or "").split())
    email = (data.get("email") or "").strip().lower()
    if not name:
        errors["name"] = _("Skriv leverantörens namn")
    elif len(name) > 200:
        errors["name"] = _("Namnet får vara högst 200 tecken")
    else:
        others = db.session.scalars(select(Supplier).where(Supplier.id != (supplier.id if supplier else 0)))
        if any(other.name.casefold() == name.casefold() for other in others):
            errors["name"] = _("Det finns redan en leverantör med detta namn")
    if email and (len(email) > 254 or not _EMAIL.match(email)):
        errors["email"] = _("Skriv en e-postadress som namn@leverantor.se, eller lämna fältet tomt")
    senders, problem = clean_sender_addresses(data.get("sender_addresses") or "")
    if problem:
        errors["sender_addresses"] = problem
    values = {"name": name, "email": email or None, "is_active": data.get("is_active") == "on"}
    return {**values, "sender_addresses": "\n".join(senders) or None}, errors


SENDERS_MAX = 50


def clean_sender_addresses(text: str) -> tuple[list[str], str | None]:
    """The sender addresses typed one a line (``drift@telia.se``, or ``@telia.se`` for the whole
    domain), normalised and without repeats: (addresses, None), or ([], the first problem)."""
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            if line.startswith("@"):
                address = "@" + normalize_email("namn" + line).rpartition("@")[2]
            else:
                address = normalize_email(line).lower()
        except AddressError:
            return [], _(
                "Rad %(line)d: %(text)s är ingen e-postadress. Skriv en adress som drift@leverantor.se, "
                "eller @leverantor.se för hela domänen, en per rad",
                line=number,
                text=line[:60],
            )
        if address not in found:
            found.append(address)
    if len(found) > SENDERS_MAX:
        return [], _("Högst %(max)d avsändaradresser", max=SENDERS_MAX)
    return found, None


def _supplier(supplier_id: int) -> Supplier:
    supplier = db.session.get(Supplier, supplier_id)
    if supplier is None:
        abort(404, description=_("Leverantören finns inte."))
    return supplier


@bp.get("/suppliers")
@roles_required(*TEAM)
def index():
    suppliers = db.session.scalars(select(Supplier).order_by(Supplier.name)).all()
    users = {
        user.id: user
        for user in db.session.scalars(select(User).where(User.id.in_([s.user_id for s in suppliers if s.user_id])))
    }
    return render_template("incidents/suppliers.html", suppliers=suppliers, users=users)


@bp.route("/suppliers/new", methods=["GET", "POST"])
@roles_required(*TEAM)
def new():
    if request.method == "GET":
        return render_template("incidents/supplier_form.html", supplier=None, values={"is_active": True}, errors={})
    values, errors = clean_supplier({**request.form, "is_active": "on"})
    if errors:
        return render_template("incidents/supplier_form.html", supplier=None, values=values, errors=errors), 400
    db.session.add(Supplier(**values, created_at=current_clock().now()))
    db.session.commit()
    return redirect(url_for("suppliers.index"))


@bp.route("/suppliers/<int:supplier_id>/edit", methods=["GET", "POST"])
@roles_required(*TEAM)
def edit(supplier_id: int):
    supplier = _supplier(supplier_id)
    if request.method == "GET":
        values = {
            "name": supplier.name,
            "email": supplier.email,
            "is_active": supplier.is_active,
            "sender_addresses": supplier.sender_addresses,
        }
        return render_template("incidents/supplier_form.html", supplier=supplier, values=values, errors={})
    values, errors = clean_supplier(request.form, supplier=supplier)
    if errors:
        return render_template("incidents/supplier_form.html", supplier=supplier, values=values, errors=errors), 400
    for field, value in values.items():
        setattr(supplier, field, value)
    db.session.commit()
    return redirect(url_for("suppliers.index"))


def _username_for(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    base = ("leverantor-" + re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-"))[:56].strip("-")
    candidate, n = base, 1
    while get_user_by_username(db_session=db.session, username=candidate) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@bp.post("/suppliers/<int:supplier_id>/api-access")
@roles_required(*TEAM)
def api_access(supplier_id: int):
    """A user with the role ``supplier`` for this supplier (made once) and a new API token, shown once."""
    supplier = _supplier(supplier_id)
    if not supplier.is_active:
        abort(409, description=_("Leverantören är inaktiv. Aktivera den först."))
    now = current_clock().now()
    user = db.session.get(User, supplier.user_id) if supplier.user_id else None
    if user is None:
        user = create_user(
            db_session=db.session,
            username=_username_for(supplier.name),
            display_name=supplier.name,
            role=Role.SUPPLIER,
            now=now,
            password=None,
        )
        supplier.user_id = user.id
    elif not user.is_active:
        abort(409, description=_("Leverantörens API-användare är inaktiverad."))
    _token, secret = create_token(db_session=db.session, user=user, name=f"api-access by user {g.user.id}", now=now)
    db.session.commit()
    response = render_template("incidents/supplier_token.html", supplier=supplier, user=user, secret=secret)
    return response, 200, {"Cache-Control": "no-store"}
