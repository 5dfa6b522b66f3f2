"""The suite's test client: it closes each answer's body as soon as it has read it, as a WSGI
server does once it has written the body (PEP 3333; gunicorn and Werkzeug's server call
``close()`` before they take the next request). Flask's own client leaves the body open until the
test closes it, so work a request leaves for after its answer (``core.after_response``: a big
letter's rest) would run at some garbage collection instead of before the test's next step."""

from __future__ import annotations

from flask.testing import FlaskClient


class ServerLikeClient(FlaskClient):
    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)
