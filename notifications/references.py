"""What a message is about, in words and with a link: the deliveries page's "Gäller".

A message carries an opaque ``ref`` (``("monthly_check", "1")``); notifications knows no domain,
so the domain that owns a kind of reference registers how to describe it in its ``init_app``::

    register_reference(app, "monthly_check", describe)

``describe(db_session, ref_id) -> (text, url | None) | None``: the words ("Månadskontroll
november 2026") and the page it links to, or None when the row is gone. Without a describer, the
kind's label (core.labels, vocabulary ``reference``) and the id are shown.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from sqlalchemy.orm import Session

from core.labels import label

_REGISTRY = "krisrutin.message_references"

Describe = Callable[[Session, str], "tuple[str, str | None] | None"]


def register_reference(app, ref_type: str, describe: Describe) -> None:
    """Let ``describe`` name the messages of ``ref_type`` on the deliveries page."""
    app.extensions.setdefault(_REGISTRY, {})[ref_type] = describe


def describe_reference(db_session: Session, ref_type: str, ref_id: str) -> tuple[str, str | None]:
    """(words, link or None) for what a message of ``ref_type`` ``ref_id`` is about."""
    describe = current_app.extensions.get(_REGISTRY, {}).get(ref_type)
    described = describe(db_session, ref_id) if describe is not None else None
    if described is not None:
        return described
    return f"{label(ref_type, 'reference')} {ref_id}", None
