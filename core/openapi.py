"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of the service's API.

Public on purpose (see tests/test_access.py): it describes the interface and holds no data, and
an integrator needs it before being given a token.

Each API area registers its part of the description with :func:`register_api_area` from its
package's ``init_app``; :func:`init_app`, called after every package's, builds the document once
per application with :func:`core.openapi_document.build_document`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from accounts.access import public
from core.openapi_document import ApiArea, build_document, json_response

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

EXTENSION_KEY = "krisrutin.openapi"
AREAS_KEY = "krisrutin.openapi.areas"

# This route's own part of the description. Its order keeps it where it has always stood: after
# the register and the calendar, before the crisis areas.
META = ApiArea(
    name="core.openapi",
    order=30,
    tags=({"name": "meta", "description": "This description; public."},),
    paths={
        "/api/v1/openapi.json": {
            "get": {
                "security": [],
                "summary": "This description",
                "tags": ["meta"],
                "responses": {"200": json_response({"type": "object"}, "The OpenAPI 3.1 description.")},
            }
        },
    },
)


@bp.get("/openapi.json")
@public
def document():
    response = jsonify(current_app.extensions[EXTENSION_KEY])
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def register_api_area(app, area: ApiArea) -> None:
    """Add an API area's paths, schemas, parameters and tags to the description ``app`` serves.

    Called from the area's package ``init_app``, before this module's :func:`init_app` builds the
    document; a later registration would be missing from it, so it raises RuntimeError.
    """
    if EXTENSION_KEY in app.extensions:
        raise RuntimeError(f"{area.name}: the OpenAPI description is already built; register before core.openapi")
    app.extensions.setdefault(AREAS_KEY, []).append(area)


def init_app(app) -> None:
    """Build the description of the registered areas and serve it."""
    app.extensions[EXTENSION_KEY] = build_document([META, *app.extensions.get(AREAS_KEY, ())])
    app.register_blueprint(bp)
