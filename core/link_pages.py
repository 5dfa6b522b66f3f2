"""The rules every signed-link page shares (the provider's check ``/k/``, letter ``/d/`` and
visit ``/v/`` pages): brute-force protection and the page of an expired link.

Each kind of link is signed with its own purpose key (:mod:`core.signed_links`), so a token of one
kind never verifies as another; the domain that owns a kind decides when its links expire.

Brute force: every refused link (malformed, forged, unknown, replaced) is stored as a row of
:class:`LinkFailure` with the client address and the time. More than :data:`FAILURE_LIMIT`
within :data:`FAILURE_WINDOW` from one address, and every link page of every kind answers 429
to that address (valid links too) until the count falls below. Rows older than the window are
pruned as new failures come in. The domains name their link pages with :func:`register_pages`
in their ``init_app``; the limit covers exactly those.

An expired link gets :func:`expired_page` (status 410, whom to contact now, as on every error page).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app, redirect, render_template, request
from sqlalchemy import String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.clock import current_clock
from core.extensions import db
from core.types import UTCDateTime

log = logging.getLogger(__name__)

FAILURE_LIMIT = 30
FAILURE_WINDOW = timedelta(minutes=10)
COUNTED_REASONS = frozenset({"malformed", "forged", "unknown", "replaced"})
_REGISTRY = "krisrutin.link_pages"


class LinkFailure(db.Model):
    """One refused link request: the client address and when (no token, no path)."""

    __tablename__ = "link_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


def register_pages(app, *, blueprints=(), endpoints=()) -> None:
    """Name link pages (whole blueprints, or single endpoints) the brute-force limit covers."""
    pages = app.extensions.setdefault(_REGISTRY, {"blueprints": set(), "endpoints": set()})
    pages["blueprints"].update(blueprints)
    pages["endpoints"].update(endpoints)


def _contact():
    settings = current_app.extensions["krisrutin.settings"]
    return {"team_email": getattr(settings, "team_email", None), "team_mobile": getattr(settings, "team_mobile", None)}


def expired_page():
    """The page of a link that has expired (410), saying whom to contact."""
    log.info("link expired")
    return render_template("links/expired.html", **_contact()), 410


def client_ip() -> str:
    return (request.remote_addr or "unknown")[:64]


def note_refused(reason: str) -> None:
    """Count a refused link from this client (only reasons a guesser produces); commits."""
    if reason not in COUNTED_REASONS:
        return
    now = current_clock().now()
    db.session.execute(delete(LinkFailure).where(LinkFailure.at < now - FAILURE_WINDOW))
    db.session.add(LinkFailure(ip=client_ip(), at=now))
    db.session.commit()


def failures(db_session: Session, ip: str, now: datetime) -> int:
    return db_session.scalar(
        select(func.count()).select_from(LinkFailure).where(LinkFailure.ip == ip, LinkFailure.at > now - FAILURE_WINDOW)
    )


def _is_link_page() -> bool:
    pages = current_app.extensions.get(_REGISTRY) or {"blueprints": (), "endpoints": ()}
    return request.blueprint in pages["blueprints"] or request.endpoint in pages["endpoints"]


def _limit_link_pages():
    if not _is_link_page():
        return None
    if failures(db.session, client_ip(), current_clock().now()) >= FAILURE_LIMIT:
        log.warning("link pages limited for a client")
        return render_template("links/limited.html", **_contact()), 429, {"Retry-After": "600"}
    return None


def back_to(default: str):
    """Redirect (303) to the form's ``next`` if it is a path of this site, else to ``default``."""
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target, code=303)
    return redirect(default, code=303)


def init_app(app) -> None:
    """Install the limit (after the access rules' hook, so a refused request is refused for its
    access first, as before any page of the domains)."""
    app.extensions.setdefault(_REGISTRY, {"blueprints": set(), "endpoints": set()})
    app.before_request(_limit_link_pages)
