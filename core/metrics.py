"""Prometheus metrics at /metrics (admins, e.g. a scraper with an admin's API token).

Counters are created at import time in the module that owns them (``from core.metrics import
REGISTRY``) so that each exists once per process. Under gunicorn with several workers set
PROMETHEUS_MULTIPROC_DIR, as prometheus-client documents.
"""

from __future__ import annotations

import logging
import os
import time as _time  # durations only; never for domain time

from flask import Blueprint, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from accounts.access import roles_required
from accounts.roles import Role

log = logging.getLogger("krisrutin.http")
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "krisrutin_http_requests_total", "HTTP requests answered", ["endpoint", "method", "status"], registry=REGISTRY
)
HTTP_LATENCY = Histogram(
    "krisrutin_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["endpoint"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@roles_required(Role.ADMIN)
def metrics():
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST)


def _start_timer():
    g._started = _time.perf_counter()


def _record(response):
    endpoint = request.endpoint or "unmatched"
    elapsed = _time.perf_counter() - getattr(g, "_started", _time.perf_counter())
    HTTP_REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
    HTTP_LATENCY.labels(endpoint).observe(elapsed)
    user = getattr(g, "user", None)
    log.info(
        "request",
        extra={
            "method": request.method,
            "route": request.url_rule.rule if request.url_rule else None,
            "status": response.status_code,
            "ms": round(elapsed * 1000, 1),
            "user_id": user.id if user is not None else None,
        },
    )
    return response


def init_app(app) -> None:
    # First of all before_request hooks, so that requests refused early are timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_record)
    app.register_blueprint(bp)
