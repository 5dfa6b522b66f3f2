"""Error responses: JSON under /api/, a plain page elsewhere; never a stack trace to the user."""

import logging
import traceback

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from config.settings import ROOT

log = logging.getLogger(__name__)


def describe_error(error: BaseException) -> str:
    """An exception's class and message, for ``last_error`` and logs.

    Database errors are reduced to their classes and SQLSTATE: their messages carry the SQL
    parameters and the server's details (``Key (email)=(...) already exists``), i.e. personal
    data. Domain exceptions raised in handlers must keep personal data out of their messages.
    """
    name = type(error).__name__
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        sqlstate = getattr(error.orig, "sqlstate", None)
        return f"{name} ({type(error.orig).__name__}{f', SQLSTATE {sqlstate}' if sqlstate else ''})"
    if isinstance(error, sa_exc.StatementError):
        return f"{name} (details withheld: they may contain personal data)"
    message = str(error).strip()
    return f"{name}: {message}"[:1000] if message else name


def error_location(error: BaseException) -> str | None:
    """Where our code raised or called into the failing library: ``path:line in function``."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(ROOT)) and "site-packages" not in f.filename]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return None
    filename = frame.filename[len(str(ROOT)) + 1 :] if frame.filename.startswith(str(ROOT)) else frame.filename
    return f"{filename}:{frame.lineno} in {frame.name}"


def stack_without_values(error: BaseException) -> str:
    """The traceback's frames (file, line, code) without the exception's message, which may
    carry personal data."""
    return "".join(traceback.format_tb(error.__traceback__))


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz", "/metrics")


def _headers(error: HTTPException) -> list[tuple[str, str]]:
    """The headers the error itself carries (Allow on a 405, WWW-Authenticate on a 401,
    Retry-After on a 429 or 503), without its own body's Content-Type."""
    return [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]


def _respond(error: HTTPException):
    if _wants_json():
        response = jsonify(error=error.description)
        response.status_code = error.code
        response.headers.extend(_headers(error))
        return response
    return render_template("error.html", error=error), error.code, _headers(error)


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        error.description = "The form had expired or was not sent from this service. Reload the page and try again."
        return _respond(error)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        error.description = (
            f"The request is larger than the service accepts ({limit / (1024 * 1024):.1f} MB, MAX_REQUEST_BYTES). "
            "Split the file or send fewer rows at a time."
        )
        return _respond(error)

    @app.errorhandler(HTTPException)
    def http_error(error):
        return _respond(error)

    @app.errorhandler(Exception)
    def unexpected(error):
        # The route, not the path: paths may carry personal link tokens.
        rule = request.url_rule.rule if request.url_rule else "?"
        log.error(
            "unhandled error in %s %s",
            request.method,
            rule,
            # Only the class: an unexpected exception's message may hold anything, personal data too.
            extra={"error": type(error).__name__, "where": error_location(error), "stack": stack_without_values(error)},
        )
        return _respond(InternalServerError("Something went wrong on our side. The error has been logged."))
