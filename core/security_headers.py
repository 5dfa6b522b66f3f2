"""Security headers on every response.

No inline scripts or styles are allowed by the CSP; the referrer is never sent to other sites,
because personal link tokens travel in URLs.
"""

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
    return response


def init_app(app) -> None:
    secure = app.config.get("SESSION_COOKIE_SECURE", False)

    def add(response):
        response = _add_headers(response)
        if secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    app.after_request(add)
