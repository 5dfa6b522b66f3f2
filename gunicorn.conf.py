"""Gunicorn's settings for Krisrutin: ``gunicorn -c gunicorn.conf.py 'app:create_app()'`` (gunicorn
also reads this file by itself when started in the checkout's root).

**No ``Server`` header.** Gunicorn writes ``Server: gunicorn`` on every answer itself, beside the
application's headers, so the application cannot take it away, and gunicorn has no setting for
it (its maintainers declined one: benoitc/gunicorn#825, #1617). Naming the server software tells
a scanner which advisories to try, and HTTP needs no such header (RFC 9110, section 10.2.4). So
this file drops the line where gunicorn writes it, in ``Response.default_headers``, the one
place HTTP/1.x answers get their status line and default headers; gunicorn's other headers
(``Date``, ``Connection``, chunking) are kept as they are. This runs in the master before it forks
the workers, so every worker answers without it. ``tests/test_gunicorn.py`` starts gunicorn with
this file and fails if a newer gunicorn writes the header elsewhere.

Gunicorn's own answers to requests it cannot parse (400, 431 before the application is called)
carry no ``Server`` header either; they are gunicorn's short English pages, which the service
cannot change.
"""

from gunicorn.http import wsgi

_default_headers = wsgi.Response.default_headers


def _default_headers_without_server(self) -> list[str]:
    return [line for line in _default_headers(self) if not line.lower().startswith("server:")]


wsgi.Response.default_headers = _default_headers_without_server
