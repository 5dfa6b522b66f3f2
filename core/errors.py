"""Error responses: JSON under /api/, a plain page elsewhere; never a stack trace to the user."""

import logging

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz", "/metrics")


def _respond(error: HTTPException):
    if _wants_json():
        response = jsonify(error=error.description)
        response.status_code = error.code
        return response
    return render_template("error.html", error=error), error.code


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        error.description = "The form had expired or was not sent from this service. Reload the page and try again."
        return _respond(error)

    @app.errorhandler(HTTPException)
    def http_error(error):
        return _respond(error)

    @app.errorhandler(Exception)
    def unexpected(error):
        # The route, not the path: paths may carry personal link tokens.
        rule = request.url_rule.rule if request.url_rule else "?"
        log.exception("unhandled error in %s %s", request.method, rule)
        return _respond(InternalServerError("Something went wrong on our side. The error has been logged."))
