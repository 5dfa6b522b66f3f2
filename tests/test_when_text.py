"""core.local_time.when_text: a time today reads "kl. 08:40", any other day carries its date, so
a Monday entry read on Saturday night is not taken for the future."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.local_time import when_text

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SATURDAY_0240 = datetime(2026, 12, 5, 2, 40, tzinfo=STOCKHOLM)


@pytest.mark.parametrize(
    ("instant", "language", "expected"),
    [
        (datetime(2026, 12, 5, 0, 5, tzinfo=STOCKHOLM), "sv", "kl. 00:05"),
        (datetime(2026, 11, 30, 8, 40, tzinfo=STOCKHOLM), "sv", "mån 30 nov kl. 08:40"),
        (datetime(2026, 12, 4, 23, 59, tzinfo=STOCKHOLM), "sv", "fre 4 dec kl. 23:59"),
        (datetime(2025, 12, 7, 8, 40, tzinfo=STOCKHOLM), "sv", "sön 7 dec 2025 kl. 08:40"),
        (datetime(2026, 11, 30, 8, 40, tzinfo=STOCKHOLM), "en", "Mon 30 Nov at 08:40"),
        (datetime(2026, 12, 5, 1, 0, tzinfo=STOCKHOLM), "en", "at 01:00"),
        # Stored in UTC: 23:30 UTC on Friday is Saturday 00:30 in Stockholm, so today.
        (datetime(2026, 12, 4, 23, 30, tzinfo=UTC), "sv", "kl. 00:30"),
    ],
)
def test_a_time_today_reads_as_a_clock_time_and_any_other_day_carries_its_date(instant, language, expected):
    assert when_text(instant, SATURDAY_0240, STOCKHOLM, language) == expected


def test_nothing_reads_as_nothing():
    assert when_text(None, SATURDAY_0240, STOCKHOLM) == ""
