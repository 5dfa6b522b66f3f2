"""The working-time calendar: working days, office hours, who is responsible, the check's dates.

Pure functions, no database. Expected holidays are written out by hand below (from the Easter
dates 2026-04-05, 2027-03-28 and 2028-04-16), not taken from the ``holidays`` package.
"""

import tomllib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from config.routine import Interval, load_routine, parse_routine
from config.settings import ROOT
from worktime.calendar import (
    CheckPlan,
    Responsibility,
    check_plan,
    is_office_hours,
    is_working_day,
    next_working_day,
    non_working_reason,
    office_hours_on,
    reminder_at,
    responsible_at,
    send_at,
)

ROUTINE_FILE = ROOT / "config" / "routine.toml"
STOCKHOLM = ZoneInfo("Europe/Stockholm")

# Every Swedish holiday (public and de facto) in 2026-2028, with its Swedish name.
HOLIDAYS = {
    date(2026, 1, 1): "Nyårsdagen",
    date(2026, 1, 6): "Trettondedag jul",
    date(2026, 4, 3): "Långfredagen",
    date(2026, 4, 5): "Påskdagen",
    date(2026, 4, 6): "Annandag påsk",
    date(2026, 5, 1): "Första maj",
    date(2026, 5, 14): "Kristi himmelsfärdsdag",
    date(2026, 5, 24): "Pingstdagen",
    date(2026, 6, 6): "Nationaldagen",
    date(2026, 6, 19): "Midsommarafton",
    date(2026, 6, 20): "Midsommardagen",
    date(2026, 10, 31): "Alla helgons dag",
    date(2026, 12, 24): "Julafton",
    date(2026, 12, 25): "Juldagen",
    date(2026, 12, 26): "Annandag jul",
    date(2026, 12, 31): "Nyårsafton",
    date(2027, 1, 1): "Nyårsdagen",
    date(2027, 1, 6): "Trettondedag jul",
    date(2027, 3, 26): "Långfredagen",
    date(2027, 3, 28): "Påskdagen",
    date(2027, 3, 29): "Annandag påsk",
    date(2027, 5, 1): "Första maj",
    date(2027, 5, 6): "Kristi himmelsfärdsdag",
    date(2027, 5, 16): "Pingstdagen",
    date(2027, 6, 6): "Nationaldagen",
    date(2027, 6, 25): "Midsommarafton",
    date(2027, 6, 26): "Midsommardagen",
    date(2027, 11, 6): "Alla helgons dag",
    date(2027, 12, 24): "Julafton",
    date(2027, 12, 25): "Juldagen",
    date(2027, 12, 26): "Annandag jul",
    date(2027, 12, 31): "Nyårsafton",
    date(2028, 1, 1): "Nyårsdagen",
    date(2028, 1, 6): "Trettondedag jul",
    date(2028, 4, 14): "Långfredagen",
    date(2028, 4, 16): "Påskdagen",
    date(2028, 4, 17): "Annandag påsk",
    date(2028, 5, 1): "Första maj",
    date(2028, 5, 25): "Kristi himmelsfärdsdag",
    date(2028, 6, 4): "Pingstdagen",
    date(2028, 6, 6): "Nationaldagen",
    date(2028, 6, 23): "Midsommarafton",
    date(2028, 6, 24): "Midsommardagen",
    date(2028, 11, 4): "Alla helgons dag",
    date(2028, 12, 24): "Julafton",
    date(2028, 12, 25): "Juldagen",
    date(2028, 12, 26): "Annandag jul",
    date(2028, 12, 31): "Nyårsafton",
}

# Weekdays in the year minus the holidays above that fall on a weekday, counted by hand:
# 2026: 261 - 10, 2027: 261 - 8, 2028 (leap, starts on a Saturday): 260 - 9.
WORKING_DAYS_PER_YEAR = {2026: 251, 2027: 253, 2028: 251}


@pytest.fixture(scope="module")
def policy():
    return load_routine(ROUTINE_FILE)


def routine_data() -> dict:
    with open(ROUTINE_FILE, "rb") as handle:
        return tomllib.load(handle)


def custom_policy(*, office_hours: dict | None = None, extra_non_working_days: list[str] | None = None):
    data = routine_data()
    if office_hours is not None:
        data["office_hours"] = office_hours
    if extra_non_working_days is not None:
        data["working_days"]["extra_non_working_days"] = extra_non_working_days
    return parse_routine(data)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=STOCKHOLM)


def days_of(year: int):
    day = date(year, 1, 1)
    while day.year == year:
        yield day
        day += timedelta(days=1)


# --- working days (vardagar) ---------------------------------------------------------------


@pytest.mark.parametrize(("day", "name"), sorted(HOLIDAYS.items()), ids=lambda v: str(v))
def test_every_swedish_holiday_is_a_non_working_day_named_in_swedish(policy, day, name):
    assert not is_working_day(day, policy)
    assert non_working_reason(day, policy) == name


@pytest.mark.parametrize("year", sorted(WORKING_DAYS_PER_YEAR))
def test_every_date_of_the_year_is_a_working_day_exactly_when_a_weekday_and_not_a_holiday(policy, year):
    expected = {day for day in days_of(year) if day.weekday() < 5 and day not in HOLIDAYS}
    actual = {day for day in days_of(year) if is_working_day(day, policy)}
    assert actual == expected
    assert len(actual) == WORKING_DAYS_PER_YEAR[year]


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        (date(2026, 11, 28), "lördag"),
        (date(2026, 11, 29), "söndag"),
        (date(2026, 11, 27), None),
        (date(2026, 4, 2), None),  # skärtorsdagen is an ordinary working day
        (date(2027, 12, 25), "Juldagen"),  # a Saturday: the holiday's name says more
    ],
)
def test_non_working_reason_names_weekends_and_is_none_on_working_days(policy, day, reason):
    assert non_working_reason(day, policy) == reason
    assert is_working_day(day, policy) is (reason is None)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 11, 23), date(2026, 11, 23)),  # already a working day
        (date(2026, 11, 28), date(2026, 11, 30)),  # Saturday -> Monday
        (date(2026, 12, 24), date(2026, 12, 28)),  # julafton .. Sunday
        (date(2026, 12, 31), date(2027, 1, 4)),  # nyårsafton, nyårsdagen, weekend
        (date(2026, 4, 3), date(2026, 4, 7)),  # långfredagen .. annandag påsk
        (date(2026, 6, 19), date(2026, 6, 22)),  # midsommarafton .. Sunday
    ],
)
def test_next_working_day_skips_weekends_and_holidays(policy, day, expected):
    assert next_working_day(day, policy) == expected


def test_local_closing_days_are_not_working_days():
    policy = custom_policy(extra_non_working_days=["2026-11-24"])
    assert not is_working_day(date(2026, 11, 24), policy)
    assert non_working_reason(date(2026, 11, 24), policy) == "lokal stängningsdag"
    assert next_working_day(date(2026, 11, 24), policy) == date(2026, 11, 25)
    answer = responsible_at(local(2026, 11, 23, 17, 0), policy)
    assert answer.next_change == local(2026, 11, 25, 7, 45)


def test_next_working_day_gives_up_after_sixty_closed_days():
    closed = [(date(2026, 11, 23) + timedelta(days=n)).isoformat() for n in range(70)]
    policy = custom_policy(extra_non_working_days=closed)
    with pytest.raises(ValueError, match="no working day within 60 days"):
        next_working_day(date(2026, 11, 23), policy)


# --- office hours (kontorstid) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "office"),
    [
        (local(2026, 11, 27, 16, 59), True),  # Friday
        (local(2026, 11, 27, 16, 59, 59), True),
        (local(2026, 11, 27, 17, 0), False),
        (local(2026, 11, 23, 7, 44), False),  # Monday
        (local(2026, 11, 23, 7, 45), True),
        (local(2026, 11, 28, 12, 0), False),  # Saturday
        (local(2026, 11, 29, 12, 0), False),  # Sunday
        (local(2026, 12, 24, 10, 0), False),  # julafton, a Thursday
        (local(2026, 6, 19, 10, 0), False),  # midsommarafton
        (local(2026, 4, 2, 16, 30), True),  # skärtorsdagen keeps its hours
        (local(2026, 6, 1, 15, 59), True),  # summer: June to August close at 16:00
        (local(2026, 6, 1, 16, 0), False),
        (local(2026, 7, 15, 16, 30), False),
        (local(2026, 8, 31, 16, 0), False),
        (local(2027, 5, 31, 16, 30), True),  # the day before summer
        (local(2026, 9, 1, 16, 30), True),  # the day after it
        (datetime(2026, 11, 23, 6, 45, tzinfo=UTC), True),  # 07:45 in Stockholm
        (datetime(2026, 11, 23, 6, 44, tzinfo=UTC), False),  # 07:44 in Stockholm
    ],
    ids=str,
)
def test_office_hours_are_weekdays_0745_to_1700_and_to_1600_in_summer(policy, moment, office):
    assert is_office_hours(moment, policy) is office


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (date(2026, 11, 23), (Interval(time(7, 45), time(17, 0)),)),
        (date(2026, 7, 1), (Interval(time(7, 45), time(16, 0)),)),
        (date(2026, 11, 28), ()),
        (date(2026, 12, 25), ()),
    ],
)
def test_office_hours_on_gives_the_days_local_intervals(policy, day, hours):
    assert office_hours_on(day, policy) == hours


@pytest.mark.parametrize("function", [is_office_hours, responsible_at])
def test_a_naive_datetime_is_refused(policy, function):
    with pytest.raises(ValueError, match="timezone-aware"):
        function(datetime(2026, 11, 23, 10, 0), policy)


# --- who is responsible, and until when ----------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "responsible", "next_change"),
    [
        # Office hours: the team, until closing time the same day.
        (local(2026, 11, 23, 10, 0), "team", "2026-11-23T17:00:00+01:00"),
        (local(2026, 11, 23, 7, 45), "team", "2026-11-23T17:00:00+01:00"),
        (local(2026, 7, 1, 10, 0), "team", "2026-07-01T16:00:00+02:00"),
        # Before opening: the on-call officer, until the same morning.
        (local(2026, 11, 23, 7, 44), "on_call", "2026-11-23T07:45:00+01:00"),
        (local(2026, 11, 23, 0, 0), "on_call", "2026-11-23T07:45:00+01:00"),
        # Friday after closing: over the weekend to Monday morning.
        (local(2026, 11, 27, 17, 0), "on_call", "2026-11-30T07:45:00+01:00"),
        (local(2026, 11, 27, 23, 59), "on_call", "2026-11-30T07:45:00+01:00"),
        # Christmas 2026: julafton, juldagen, annandag jul and Sunday are closed.
        (local(2026, 12, 23, 17, 0), "on_call", "2026-12-28T07:45:00+01:00"),
        (local(2026, 12, 24, 10, 0), "on_call", "2026-12-28T07:45:00+01:00"),
        (local(2026, 12, 23, 10, 0), "team", "2026-12-23T17:00:00+01:00"),
        # New Year: nyårsafton, nyårsdagen, the weekend.
        (local(2026, 12, 30, 17, 0), "on_call", "2027-01-04T07:45:00+01:00"),
        # Easter 2026: långfredagen to annandag påsk.
        (local(2026, 4, 2, 17, 0), "on_call", "2026-04-07T07:45:00+02:00"),
        # Midsummer 2026, in summer hours.
        (local(2026, 6, 18, 16, 0), "on_call", "2026-06-22T07:45:00+02:00"),
        # Spring DST change, Sunday 2026-03-29 02:00 -> 03:00: Monday's opening is in summer time.
        (local(2026, 3, 27, 17, 0), "on_call", "2026-03-30T07:45:00+02:00"),
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "on_call", "2026-03-30T07:45:00+02:00"),
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "on_call", "2026-03-30T07:45:00+02:00"),
        (local(2026, 3, 29, 12, 0), "on_call", "2026-03-30T07:45:00+02:00"),
        # Autumn DST change, Sunday 2026-10-25 03:00 -> 02:00: Monday's opening is in winter time.
        (local(2026, 10, 23, 17, 0), "on_call", "2026-10-26T07:45:00+01:00"),
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "on_call", "2026-10-26T07:45:00+01:00"),  # 02:30 +02:00
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "on_call", "2026-10-26T07:45:00+01:00"),  # 02:30 +01:00
        (local(2026, 10, 25, 12, 0), "on_call", "2026-10-26T07:45:00+01:00"),
        (local(2026, 10, 26, 7, 45), "team", "2026-10-26T17:00:00+01:00"),
    ],
    ids=str,
)
def test_responsible_at_names_the_party_and_the_next_handover(policy, instant, responsible, next_change):
    answer = responsible_at(instant, policy)
    assert answer.responsible == responsible
    assert answer.office_hours is (responsible == "team")
    assert answer.next_change.isoformat() == next_change
    assert answer.next_change.tzinfo == STOCKHOLM


@pytest.mark.parametrize(
    ("instant", "at"),
    [
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25T02:30:00+02:00"),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25T02:30:00+01:00"),
        (datetime(2026, 11, 23, 9, 0, tzinfo=UTC), "2026-11-23T10:00:00+01:00"),
    ],
)
def test_responsible_at_expresses_the_instant_in_local_time_with_the_right_offset(policy, instant, at):
    answer = responsible_at(instant, policy)
    assert answer.at.isoformat() == at
    # In the repeated hour, PEP 495 makes == across zones false even for the same instant.
    assert answer.at.astimezone(UTC) == instant


def test_responsibility_is_a_frozen_value(policy):
    answer = responsible_at(local(2026, 11, 23, 10, 0), policy)
    assert answer == Responsibility(
        at=local(2026, 11, 23, 10, 0), responsible="team", office_hours=True, next_change=local(2026, 11, 23, 17, 0)
    )
    with pytest.raises(AttributeError):
        answer.responsible = "on_call"


def test_next_change_is_none_when_nobody_ever_takes_over():
    policy = custom_policy(office_hours={"weekdays": ["mon", "tue", "wed", "thu", "fri"], "hours": []})
    answer = responsible_at(local(2026, 11, 23, 10, 0), policy)
    assert answer.responsible == "on_call"
    assert answer.next_change is None


def test_touching_intervals_are_one_stretch_of_office_hours():
    policy = custom_policy(office_hours={"hours": ["07:00-12:00", "12:00-16:00"]})
    assert responsible_at(local(2026, 11, 24, 10, 0), policy).next_change == local(2026, 11, 24, 16, 0)


# --- another municipality's hours (000_...): lunch closure and the day before a holiday -----

OTHER_MUNICIPALITY = {
    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    "hours": ["07:00-12:00", "13:00-16:00"],
    "by_weekday": {"fri": ["07:00-15:00"]},
    "day_before_holiday": {"hours": ["07:00-13:00"]},
}


@pytest.fixture(scope="module")
def other_policy():
    return custom_policy(office_hours=OTHER_MUNICIPALITY)


@pytest.mark.parametrize(
    ("instant", "responsible", "next_change"),
    [
        (local(2026, 11, 24, 11, 59), "team", "2026-11-24T12:00:00+01:00"),  # Tuesday morning
        (local(2026, 11, 24, 12, 30), "on_call", "2026-11-24T13:00:00+01:00"),  # lunch
        (local(2026, 11, 24, 13, 0), "team", "2026-11-24T16:00:00+01:00"),
        (local(2026, 11, 24, 16, 0), "on_call", "2026-11-25T07:00:00+01:00"),
        (local(2026, 11, 27, 14, 59), "team", "2026-11-27T15:00:00+01:00"),  # Friday, normal weekend
        (local(2026, 11, 27, 15, 0), "on_call", "2026-11-30T07:00:00+01:00"),
        # Wednesday before Kristi himmelsfärdsdag: 07:00-13:00, straight through lunch.
        (local(2026, 5, 13, 12, 30), "team", "2026-05-13T13:00:00+02:00"),
        (local(2026, 5, 13, 13, 0), "on_call", "2026-05-15T07:00:00+02:00"),
    ],
    ids=str,
)
def test_other_municipality_closes_for_lunch_and_early_before_holidays(other_policy, instant, responsible, next_change):
    answer = responsible_at(instant, other_policy)
    assert answer.responsible == responsible
    assert answer.next_change.isoformat() == next_change


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (date(2026, 11, 24), ("07:00-12:00", "13:00-16:00")),  # Tuesday
        (date(2026, 11, 27), ("07:00-15:00",)),  # Friday before a normal weekend
        (date(2026, 5, 13), ("07:00-13:00",)),  # Wednesday before Kristi himmelsfärdsdag
        (date(2026, 12, 23), ("07:00-13:00",)),  # before julafton
        (date(2026, 10, 30), ("07:00-13:00",)),  # Friday before Alla helgons dag, a Saturday
        (date(2026, 6, 18), ("07:00-13:00",)),  # before midsommarafton
        (date(2026, 5, 14), ()),  # Kristi himmelsfärdsdag itself
    ],
)
def test_other_municipality_office_hours_by_day(other_policy, day, hours):
    as_text = tuple(f"{iv.start:%H:%M}-{iv.end:%H:%M}" for iv in office_hours_on(day, other_policy))
    assert as_text == hours


def test_day_before_a_local_closing_day_has_day_before_holiday_hours():
    policy = custom_policy(office_hours=OTHER_MUNICIPALITY, extra_non_working_days=["2026-11-25"])
    assert office_hours_on(date(2026, 11, 24), policy) == (Interval(time(7, 0), time(13, 0)),)


# --- the monthly contact check (test av rutin) ---------------------------------------------


def _months(first_year: int, last_year: int):
    return [(year, month) for year in range(first_year, last_year + 1) for month in range(1, 13)]


@pytest.mark.parametrize(("year", "month"), _months(2026, 2028), ids=lambda v: str(v))
def test_check_plan_follows_the_routine_for_every_month(policy, year, month):
    plan = check_plan(year, month, policy)
    first = date(year, month, 1)
    assert plan.month == f"{year}-{month:02d}"
    # Sent on the 1st or the first working day after it.
    assert plan.send_on >= first and is_working_day(plan.send_on, policy)
    assert all(not is_working_day(first + timedelta(days=n), policy) for n in range((plan.send_on - first).days))
    # Reminders on calendar days 3 and 4, whatever day that is.
    assert plan.reminders == (plan.send_on + timedelta(days=3), plan.send_on + timedelta(days=4))
    # The call on day 5 or the first working day after it.
    day_five = plan.send_on + timedelta(days=5)
    assert plan.call_on >= day_five and is_working_day(plan.call_on, policy)
    assert all(not is_working_day(day_five + timedelta(days=n), policy) for n in range((plan.call_on - day_five).days))


@pytest.mark.parametrize(
    ("year", "month", "send_on", "reminders", "call_on"),
    [
        # Nyårsdagen is a Friday: Monday the 4th; day 5 is a Saturday.
        (2027, 1, "2027-01-04", ["2027-01-07", "2027-01-08"], "2027-01-11"),
        # The 1st is a Sunday; day 5 (the 7th) is a Saturday.
        (2026, 11, "2026-11-02", ["2026-11-05", "2026-11-06"], "2026-11-09"),
        # Första maj is a Friday.
        (2026, 5, "2026-05-04", ["2026-05-07", "2026-05-08"], "2026-05-11"),
        # Nyårsdagen is a Saturday; the first reminder falls on trettondedag jul and still goes out.
        (2028, 1, "2028-01-03", ["2028-01-06", "2028-01-07"], "2028-01-10"),
        # Nyårsdagen is a Thursday, trettondedag jul a reminder day.
        (2026, 1, "2026-01-02", ["2026-01-05", "2026-01-06"], "2026-01-07"),
        # Day 5 is annandag påsk: the call moves to Tuesday; reminders on Easter weekend.
        (2026, 4, "2026-04-01", ["2026-04-04", "2026-04-05"], "2026-04-07"),
        # Day 5 is nationaldagen, a Tuesday.
        (2028, 6, "2028-06-01", ["2028-06-04", "2028-06-05"], "2028-06-07"),
        # An ordinary month.
        (2026, 12, "2026-12-01", ["2026-12-04", "2026-12-05"], "2026-12-07"),
    ],
)
def test_check_plan_pinned_months(policy, year, month, send_on, reminders, call_on):
    plan = check_plan(year, month, policy)
    assert plan.to_json() == {
        "month": f"{year}-{month:02d}",
        "send_on": send_on,
        "reminders": reminders,
        "call_on": call_on,
    }


def test_check_plan_skips_a_local_closing_day():
    policy = custom_policy(extra_non_working_days=["2026-12-01"])
    plan = check_plan(2026, 12, policy)
    assert plan == CheckPlan(
        month="2026-12",
        send_on=date(2026, 12, 2),
        reminders=(date(2026, 12, 5), date(2026, 12, 6)),
        call_on=date(2026, 12, 7),
    )


@pytest.mark.parametrize(
    ("year", "month", "send", "reminders"),
    [
        # 08:00 in Stockholm: 07:00 UTC in winter, 06:00 UTC in summer.
        (2026, 11, datetime(2026, 11, 2, 7, 0, tzinfo=UTC), [datetime(2026, 11, 5, 7, 0, tzinfo=UTC)]),
        (2026, 6, datetime(2026, 6, 1, 6, 0, tzinfo=UTC), [datetime(2026, 6, 4, 6, 0, tzinfo=UTC)]),
    ],
)
def test_send_and_reminder_instants_are_at_send_time_local(policy, year, month, send, reminders):
    plan = check_plan(year, month, policy)
    assert send_at(plan, policy) == send
    assert send_at(plan, policy).utcoffset() == timedelta(0)
    assert reminder_at(plan, 0, policy) == reminders[0]
    assert reminder_at(plan, 1, policy) == reminders[0] + timedelta(days=1)
