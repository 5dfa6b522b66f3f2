"""The incident pages (a skeleton: the list and the page of one incident; the record part of
issue 5 fills them in). Other parts add panels to the incident page with templates
``crisis/_routing_panel.html`` and ``crisis/_letters_panel.html``."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from accounts.access import roles_required
from accounts.roles import STAFF
from core.extensions import db
from crisis.models import Incident

bp = Blueprint("incidents", __name__)


@bp.get("/incidents")
@roles_required(*STAFF)
def index():
    incidents = db.session.scalars(select(Incident).order_by(Incident.id.desc()).limit(200)).all()
    return render_template("crisis/incidents.html", incidents=incidents)


@bp.get("/incidents/<int:incident_id>")
@roles_required(*STAFF)
def detail(incident_id: int):
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        abort(404)
    return render_template("crisis/incident.html", incident=incident)
