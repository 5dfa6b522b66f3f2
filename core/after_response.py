"""Work a request leaves for after its answer: :func:`after_answer`.

A request that has committed everything that must be durable can answer at once and do the rest
of its work after the answer has been written. The work is registered on the response with
Werkzeug's ``call_on_close``: a WSGI server calls the body's ``close()`` after it has written the
body (PEP 3333; gunicorn's workers and Werkzeug's server both do), so the client has its whole
answer (the body's ``Content-Length``) before the work starts, and the worker does the work before
it takes the next request.

Such work must be an optimisation of something that happens anyway: whatever the work was to do
must also be recorded durably, in the request's own transaction, for a job that does it if the
worker dies, is restarted or the work fails (issue 18: a big letter's rest is queued here, and by
the scheduler's ``crisis.letter_fanout`` task otherwise). A failure is logged (without personal
data) and does not reach the client, who already has the answer.

The work runs in an application context of its own (the request's has been popped by then), so
it gets its own database session, which is removed when the work ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Response, current_app

from core.errors import describe_error, error_location

log = logging.getLogger(__name__)


def after_answer(response: Response, work: Callable[[], None], *, what: str) -> Response:
    """Run ``work()`` once ``response`` has been written to the client; ``what`` names the work in
    the log if it fails. Returns ``response``."""
    app = current_app._get_current_object()

    def run() -> None:
        with app.app_context():
            try:
                work()
            except Exception as error:  # the client has its answer; the task stands in
                # Not log.exception: a database error's message carries its SQL parameters.
                log.error(
                    "work after the answer failed; its task will do it",
                    extra={"work": what, "error": describe_error(error), "where": error_location(error)},
                )

    response.call_on_close(run)
    return response
