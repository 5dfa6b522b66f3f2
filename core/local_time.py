"""Instants as the people of the routine read them: Stockholm local time, in Swedish words."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

MONTH_NAMES = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)


def local_text(instant: datetime | None) -> str:
    """An instant as the routine's local time in Swedish: "24 november 2026 kl. 02:10"."""
    if instant is None:
        return ""
    local = instant.astimezone(current_app.extensions["krisrutin.routine"].timezone)
    return f"{local.day} {MONTH_NAMES[local.month - 1]} {local.year} kl. {local:%H:%M}"
