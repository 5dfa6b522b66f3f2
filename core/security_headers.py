"""Security headers on every response.

No inline scripts or styles are allowed by the CSP; the referrer is never sent to other sites,
because personal link tokens travel in URLs. Nothing but the static files may be stored by a
browser or a proxy (``Cache-Control: no-store``): pages, exports and API answers carry personal data.
"""

from flask import request

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def _add_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static" and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"  # a view that sets its own (the public OpenAPI document) keeps it
    return response


def init_app(app) -> None:
    secure = app.config.get("SESSION_COOKIE_SECURE", False)

    def add(response):
        response = _add_headers(response)
        if secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    app.after_request(add)
