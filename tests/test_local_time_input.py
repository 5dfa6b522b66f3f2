"""Local times typed in forms (core.local_time.parse_local_input): the API's rule for instants
(years 1900-2200), and Stockholm's clock changes — the spring-forward gap refused naming the
gap, the repeated autumn hour refused asking which unless its reading is chosen."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from core.local_time import LocalTimeError, parse_local_input

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.mark.parametrize(
    ("text", "offset", "expected"),
    [
        ("2027-06-15T16:30", None, datetime(2027, 6, 15, 14, 30, tzinfo=UTC)),  # summer time
        ("2027-01-15 16:30", None, datetime(2027, 1, 15, 15, 30, tzinfo=UTC)),  # winter time, a space
        ("2027-03-28T01:59", None, datetime(2027, 3, 28, 0, 59, tzinfo=UTC)),  # just before the gap
        ("2027-03-28T03:00", None, datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),  # the gap's end
        ("2027-10-31T01:59", None, datetime(2027, 10, 30, 23, 59, tzinfo=UTC)),
        ("2027-10-31T03:00", None, datetime(2027, 10, 31, 2, 0, tzinfo=UTC)),
        ("2027-10-31T02:30", "+02:00", datetime(2027, 10, 31, 0, 30, tzinfo=UTC)),  # the first 02:30
        ("2027-10-31T02:30", "+01:00", datetime(2027, 10, 31, 1, 30, tzinfo=UTC)),  # the second
        ("2027-10-31T02:30+01:00", None, datetime(2027, 10, 31, 1, 30, tzinfo=UTC)),  # typed with its offset
        ("2027-06-15T16:30", "+01:00", datetime(2027, 6, 15, 14, 30, tzinfo=UTC)),  # a stale choice is ignored
        ("", None, None),
        ("  ", None, None),
    ],
)
def test_a_local_time_that_exists_once_is_read_in_stockholm(text, offset, expected):
    assert parse_local_input(text, STOCKHOLM, offset=offset) == expected


@pytest.mark.parametrize(
    ("text", "kind", "words"),
    [
        ("2027-03-28T02:30", "gap", "Klockan 02:00–03:00 finns inte den 28 mars 2027: klockan ställs fram"),
        ("2026-03-29T02:00", "gap", "Ange en tid före 02:00 eller från 03:00"),
        ("2027-10-31T02:30", "repeated", "Klockan 02:00–03:00 kommer två gånger den 31 oktober 2027"),
        ("2026-10-25T02:00", "repeated", "Välj vilken 02:00 du menar"),
        ("9999-12-31T10:00", "range", "Ange ett år mellan 1900 och 2200"),
        ("1899-12-31T10:00", "range", "Ange ett år mellan 1900 och 2200"),
        ("2027-02-30T10:00", "format", "finns inte"),
        ("2027-06-15T25:00", "format", "finns inte"),
        ("²027-06-15T16:30", "format", "Ange datum och tid"),
        ("٢٠٢٧-06-15T16:30", "format", "Ange datum och tid"),
        ("igår", "format", "Ange datum och tid"),
        ("2027-06-15T16:30+25:00", "format", "Tidszonen"),
    ],
)
def test_a_time_that_does_not_exist_happens_twice_or_is_out_of_range_is_refused(text, kind, words):
    with pytest.raises(LocalTimeError) as refused:
        parse_local_input(text, STOCKHOLM)
    assert refused.value.kind == kind and words in refused.value.message


def test_the_repeated_hour_offers_its_two_readings_first_and_second():
    with pytest.raises(LocalTimeError) as refused:
        parse_local_input("2027-10-31T02:30", STOCKHOLM, offset="+03:00")
    assert [offset for offset, _label in refused.value.choices] == ["+02:00", "+01:00"]
    assert "första" in refused.value.choices[0][1] and "andra" in refused.value.choices[1][1]
