"""Error responses: JSON under /api/, a Swedish page elsewhere (English with ``?lang=en``) that
ends with whom to contact now; never a stack trace to the user."""

import logging
import traceback

from flask import jsonify, render_template, request
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from config.settings import ROOT
from core.contact_now import team_contact

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


# What a page says for each status, in Swedish (translations/en has the English): a heading and
# what to do. An error raised with a description of its own keeps it on the page
# (``abort(404, description=_("Störningen finns inte."))``); Werkzeug's English defaults never show.
PAGES = {
    400: (_l("Begäran kunde inte utföras"), _l("Uppgifterna kunde inte läsas. Gå tillbaka och försök igen.")),
    403: (
        _l("Du har inte behörighet till den här sidan"),
        _l("Ditt konto får inte göra det här. Behöver du det, kontakta välfärdsteknikteamet."),
    ),
    404: (
        _l("Sidan finns inte"),
        _l("Adressen kan vara felskriven, eller så finns sidan inte längre. Kontrollera länken."),
    ),
    405: (
        _l("Begäran kunde inte utföras"),
        _l("Sidan kan inte användas på det sättet. Gå tillbaka till sidan och försök igen därifrån."),
    ),
    410: (_l("Sidan finns inte längre"), _l("Det du söker har tagits bort eller gäller inte längre.")),
    413: (_l("Det du skickade är för stort"), _l("Det du skickade är större än tjänsten tar emot.")),  # too_large
    429: (_l("För många försök"), _l("Vänta en stund och försök sedan igen.")),
    500: (
        _l("Något gick fel hos oss"),
        _l("Felet är loggat. Försök igen om en stund. Kvarstår felet, kontakta välfärdsteknikteamet."),
    ),
}


def _page(error: HTTPException, message: str | None = None):
    """The error page: a heading, what to do, and whom to contact now (the calendar decides)."""
    heading, default = PAGES.get(error.code, PAGES[400] if (error.code or 500) < 500 else PAGES[500])
    if message is None:
        message = error.description if error.description != type(error).description else default
    status, headers = error.code, _headers(error)
    try:
        return render_template("error.html", heading=heading, message=message), status, headers
    except Exception as failure:  # handled: a page that needs nothing (the layout may need the database)
        log.error("error page could not be rendered", extra={"error": type(failure).__name__, "status": status})
        page = render_template("error_plain.html", heading=heading, message=message, contact=team_contact())
        return page, status, headers


def _respond(error: HTTPException, *, page: str | None = None):
    """JSON ``{"error": description}`` under /api/ (English, for integrators), else the page
    (``page`` replaces the description there)."""
    if _wants_json():
        response = jsonify(error=error.description)
        response.status_code = error.code
        response.headers.extend(_headers(error))
        return response
    return _page(error, page)


def _size(limit: int) -> str:
    """The request limit as a page says it: ``10 MB``, ``4 kB`` (numbers in the page's language)."""
    if limit >= 1024 * 1024:
        return f"{format_decimal(round(limit / (1024 * 1024), 1))} MB"
    return f"{format_decimal(max(1, round(limit / 1024)))} kB"


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        error.description = "The form had expired or was not sent from this service. Reload the page and try again."
        return _respond(
            error,
            page=_(
                "Formuläret hade gått ut eller skickades inte från den här tjänsten. Ladda om sidan och försök igen."
            ),
        )

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        error.description = (
            f"The request is larger than the service accepts ({limit / (1024 * 1024):.1f} MB, MAX_REQUEST_BYTES). "
            "Split the file or send fewer rows at a time."
        )
        page = _(
            "Det du skickade är större än tjänsten tar emot: högst %(limit)s åt gången. "
            "Dela upp filen eller skicka färre rader åt gången.",
            limit=_size(limit),
        )
        return _respond(error, page=page)

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
        failure = InternalServerError("Something went wrong on our side. The error has been logged.")
        return _respond(failure, page=PAGES[500][1])
