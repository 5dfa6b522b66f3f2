"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of the service's API.

Public on purpose (see tests/test_access.py): it describes the interface and holds no data, and
an integrator needs it before being given a token. The document is built once per application
by :func:`core.openapi_document.build_document`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from accounts.access import public

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

EXTENSION_KEY = "krisrutin.openapi"


@bp.get("/openapi.json")
@public
def document():
    response = jsonify(current_app.extensions[EXTENSION_KEY])
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def init_app(app) -> None:
    from core.openapi_document import build_document

    app.extensions[EXTENSION_KEY] = build_document()
    app.register_blueprint(bp)
