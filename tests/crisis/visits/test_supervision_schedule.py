"""Weekly supervision schedules as UTC instants: night rounds across midnight, validity dates,
exceptions, and both daylight-saving nights of 2027 (pure functions, no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from crisis.visits.clients import parse_weekdays
from crisis.visits.models import ScheduleException, SupervisedClient, SupervisionSchedule
from crisis.visits.supervision import local_instant, supervisions_between

STOCKHOLM = ZoneInfo("Europe/Stockholm")
NIGHTLY = ("23:00", "01:30", "04:00")


def client(times=NIGHTLY, weekdays=range(7), exceptions=(), valid_from=None, valid_until=None):
    return SupervisedClient(
        reference="K-1",
        area="Norr",
        schedules=[
            SupervisionSchedule(weekdays=list(weekdays), local_time=t, valid_from=valid_from, valid_until=valid_until)
            for t in times
        ],
        exceptions=[ScheduleException(on_date=d, local_time=t, action=a) for d, t, a in exceptions],
    )


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(y, m, d, hh, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=STOCKHOLM).astimezone(UTC)


def test_a_night_round_is_three_times_each_on_its_own_local_date():
    found = supervisions_between(client(), local(2027, 1, 11, 22), local(2027, 1, 12, 5), STOCKHOLM)
    assert found == [local(2027, 1, 11, 23), local(2027, 1, 12, 1, 30), local(2027, 1, 12, 4)]
    assert [instant.tzinfo for instant in found] == [UTC] * 3


def test_the_window_is_half_open_and_weekdays_count_on_the_local_date():
    weekdays_only = client(weekdays=range(5))  # Monday-Friday
    # Friday 15 January 2027 23:00 is in; Saturday 01:30 and 04:00 are not (Saturday's own times).
    found = supervisions_between(weekdays_only, local(2027, 1, 15, 23), local(2027, 1, 16, 4), STOCKHOLM)
    assert found == [local(2027, 1, 15, 23)]
    # Monday 01:30 after a Sunday without supervision.
    found = supervisions_between(weekdays_only, local(2027, 1, 17, 12), local(2027, 1, 18, 2), STOCKHOLM)
    assert found == [local(2027, 1, 18, 1, 30)]


def test_validity_dates_are_inclusive_local_dates():
    limited = client(times=("23:00",), valid_from=date(2027, 1, 12), valid_until=date(2027, 1, 13))
    found = supervisions_between(limited, local(2027, 1, 10, 0), local(2027, 1, 16, 0), STOCKHOLM)
    assert found == [local(2027, 1, 12, 23), local(2027, 1, 13, 23)]


def test_exceptions_skip_a_time_skip_a_day_and_add_a_time():
    with_exceptions = client(
        exceptions=[
            (date(2027, 1, 12), "01:30", "skip"),
            (date(2027, 1, 13), None, "skip"),
            (date(2027, 1, 13), "02:00", "add"),
        ]
    )
    found = supervisions_between(with_exceptions, local(2027, 1, 11, 12), local(2027, 1, 14, 5), STOCKHOLM)
    assert found == [
        local(2027, 1, 11, 23),
        local(2027, 1, 12, 4),  # 01:30 skipped
        local(2027, 1, 12, 23),
        local(2027, 1, 13, 2),  # the whole day skipped, the added 02:00 kept
        local(2027, 1, 14, 1, 30),
        local(2027, 1, 14, 4),
    ]


def test_spring_forward_night_a_missing_time_moves_to_the_end_of_the_gap():
    # 28 March 2027: 02:00 CET becomes 03:00 CEST (01:00 UTC); 02:30 does not exist.
    night = client(times=("23:00", "01:30", "02:30", "04:00"))
    found = supervisions_between(night, utc(2027, 3, 27, 12), utc(2027, 3, 28, 6), STOCKHOLM)
    assert found == [utc(2027, 3, 27, 22), utc(2027, 3, 28, 0, 30), utc(2027, 3, 28, 1), utc(2027, 3, 28, 2)]
    assert local_instant(date(2027, 3, 28), datetime(2000, 1, 1, 2, 30).time(), STOCKHOLM) == utc(2027, 3, 28, 1)


def test_spring_forward_two_times_in_the_gap_are_one_supervision():
    night = client(times=("02:15", "02:45", "03:00"))
    found = supervisions_between(night, utc(2027, 3, 27, 12), utc(2027, 3, 28, 6), STOCKHOLM)
    assert found == [utc(2027, 3, 28, 1)]


def test_fall_back_night_an_ambiguous_time_happens_once_the_first_time():
    # 31 October 2027: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens twice.
    night = client(times=("23:00", "01:30", "02:30", "04:00"))
    found = supervisions_between(night, utc(2027, 10, 30, 12), utc(2027, 10, 31, 6), STOCKHOLM)
    assert found == [
        utc(2027, 10, 30, 21),  # 23:00 CEST
        utc(2027, 10, 30, 23, 30),  # 01:30 CEST
        utc(2027, 10, 31, 0, 30),  # 02:30 CEST, the first of the two
        utc(2027, 10, 31, 3),  # 04:00 CET
    ]


def test_an_empty_or_reversed_window_has_no_supervisions():
    assert supervisions_between(client(), local(2027, 1, 12, 5), local(2027, 1, 12, 5), STOCKHOLM) == []
    assert supervisions_between(client(), local(2027, 1, 12, 5), local(2027, 1, 11, 5), STOCKHOLM) == []


@pytest.mark.parametrize(
    ("value", "days"),
    [
        (["mon", "tue"], [0, 1]),
        ([0, 6], [0, 6]),
        ("mån-fre", [0, 1, 2, 3, 4]),
        ("fre-mån", [0, 4, 5, 6]),
        (["lör", "Söndag"], [5, 6]),
        ("alla", [0, 1, 2, 3, 4, 5, 6]),
    ],
)
def test_weekdays_are_read_in_english_swedish_numbers_and_ranges(value, days):
    assert parse_weekdays(value) == days


@pytest.mark.parametrize("value", [[], ["moon"], [7], "", None, [True]])
def test_bad_weekdays_are_refused(value):
    with pytest.raises(ValueError):
        parse_weekdays(value)
