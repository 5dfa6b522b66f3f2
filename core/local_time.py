"""Instants as the people of the routine read them: Stockholm local time, in Swedish words."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from flask import current_app
from flask_babel import get_locale

from core.clock import current_clock

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


_WEEKDAYS = {
    "sv": ("mån", "tis", "ons", "tor", "fre", "lör", "sön"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_MONTHS_SHORT = {
    "sv": ("jan", "feb", "mars", "apr", "maj", "juni", "juli", "aug", "sep", "okt", "nov", "dec"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}


def when_text(instant: datetime | None, now: datetime, tz=None, language: str = "sv") -> str:
    """When something happened, read at ``now``: "kl. 08:40" today, "mån 7 dec kl. 08:40" on
    another day (with the year when it is not this year), in the routine's zone; English with
    ``language="en"`` ("at 08:40", "Mon 7 Dec at 08:40")."""
    if instant is None:
        return ""
    tz = tz or current_app.extensions["krisrutin.routine"].timezone
    language = language if language in _WEEKDAYS else "sv"
    local, today = instant.astimezone(tz), now.astimezone(tz).date()
    clock = f"kl. {local:%H:%M}" if language == "sv" else f"at {local:%H:%M}"
    if local.date() == today:
        return clock
    day = f"{_WEEKDAYS[language][local.weekday()]} {local.day} {_MONTHS_SHORT[language][local.month - 1]}"
    if local.year != today.year:
        day += f" {local.year}"
    return f"{day} {clock}"


def _when_filter(instant: datetime | None) -> str:
    """The ``when`` filter: :func:`when_text` at the clock's now, in the page's language."""
    locale = get_locale()
    return when_text(instant, current_clock().now(), language=locale.language if locale else "sv")


# --- local times typed in forms ------------------------------------------------------------------
#
# A form's date and time (``datetime-local``: "2027-03-28T02:30") is a wall-clock time in the
# routine's zone. Every form reads it with :func:`form_instant`, under the API's rule for instants:
# a year from YEAR_MIN to YEAR_MAX, a time that exists. A time in the spring-forward gap is
# refused naming the gap; a time the clocks pass twice (the autumn hour) is refused asking which,
# with the two readings offered (the form shows them as a choice, ``<field>_offset``, see
# templates/_local_time.html) — or the time may be typed with its offset ("02:30+01:00").

YEAR_MIN, YEAR_MAX = 1900, 2200  # the years an instant may have, in the API and in forms
_LOCAL_INPUT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?\s*(Z|[+-]\d{2}:\d{2})?", re.ASCII | re.IGNORECASE
)


class LocalTimeError(ValueError):
    """A form's local time refused: ``message`` (Swedish), ``kind`` ("format", "range", "gap" or
    "repeated") and, for a time the clocks pass twice, ``choices``: the two readings as (offset,
    label), e.g. ("+02:00", "02:30 den första gången ...")."""

    def __init__(self, message: str, kind: str = "format", choices: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.choices = list(choices or [])


def check_year(year: int) -> None:
    """ValueError (Swedish) unless ``year`` is within the range every instant must be in."""
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise ValueError(f"Ange ett år mellan {YEAR_MIN} och {YEAR_MAX}")


def clock_change(wall: datetime, tz) -> tuple[datetime, timedelta, timedelta]:
    """For a naive wall time in a gap or a fold of ``tz``: the UTC instant the clocks change, and
    the offsets before and after (to the second)."""
    readings = sorted(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
    low, high = readings
    before, after = low.astimezone(tz).utcoffset(), high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0), before, after


def exists(wall: datetime, tz) -> bool:
    """Whether the naive wall time ``wall`` happens in ``tz`` (not in a spring-forward gap)."""
    return wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def _changed_hour(wall: datetime, tz) -> tuple[str, str]:
    """The wall-clock hour skipped or passed twice at the clock change near ``wall``: ("02:00", "03:00")."""
    change, before, after = clock_change(wall, tz)
    start, end = sorted((change + before, change + after))
    return f"{start:%H:%M}", f"{end:%H:%M}"


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _day_text(day) -> str:
    return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


def repeated_readings(wall: datetime, tz) -> list[tuple[str, str]]:
    """The two readings (offset, Swedish label) of a wall time the clocks pass twice; [] else."""
    first, second = (wall.replace(tzinfo=tz, fold=fold) for fold in (0, 1))
    if not exists(wall, tz) or first.utcoffset() == second.utcoffset():
        return []
    time_text = f"{wall:%H:%M}"
    return [
        (
            _offset_text(first.utcoffset()),
            f"{time_text} den första gången, före omställningen (UTC{_offset_text(first.utcoffset())})",
        ),
        (
            _offset_text(second.utcoffset()),
            f"{time_text} den andra gången, efter omställningen (UTC{_offset_text(second.utcoffset())})",
        ),
    ]


def _explicit_zone(text: str) -> timezone:
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 23 or minutes > 59:
        raise LocalTimeError("Tidszonen ska skrivas som +01:00 eller +02:00")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_local_input(text: str, tz, *, offset: str | None = None) -> datetime | None:
    """A date and time typed in a form (``YYYY-MM-DDTHH:MM``, a space for the T allowed, an
    offset allowed) as a UTC instant, or None when empty; :class:`LocalTimeError` (Swedish) when
    malformed, out of range, in the spring-forward gap, or passed twice without ``offset`` (one of
    the two readings' offsets, "+02:00") saying which."""
    text = (text or "").strip()
    if not text:
        return None
    match = _LOCAL_INPUT.fullmatch(text)
    if match is None:
        raise LocalTimeError("Ange datum och tid som ÅÅÅÅ-MM-DD TT:MM, t.ex. 2027-06-15 16:30")
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups()[:6])
    try:
        check_year(year)
    except ValueError as error:
        raise LocalTimeError(str(error), "range") from None
    try:
        wall = datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 (a wall time, read in tz below)
    except ValueError:
        raise LocalTimeError("Datumet eller klockslaget finns inte, t.ex. 2027-06-15 16:30") from None
    if match.group(7):
        return wall.replace(tzinfo=_explicit_zone(match.group(7))).astimezone(UTC)
    if not exists(wall, tz):
        start, end = _changed_hour(wall, tz)
        raise LocalTimeError(
            f"Klockan {start}–{end} finns inte den {_day_text(wall)}: klockan ställs fram. "
            f"Ange en tid före {start} eller från {end}.",
            "gap",
        )
    readings = repeated_readings(wall, tz)
    if not readings:
        return wall.replace(tzinfo=tz).astimezone(UTC)
    chosen = next((fold for fold, (value, _label) in enumerate(readings) if value == (offset or "").strip()), None)
    if chosen is None:
        start, end = _changed_hour(wall, tz)
        raise LocalTimeError(
            f"Klockan {start}–{end} kommer två gånger den {_day_text(wall)}: klockan ställs tillbaka. "
            f"Välj vilken {wall:%H:%M} du menar.",
            "repeated",
            readings,
        )
    return wall.replace(tzinfo=tz, fold=chosen).astimezone(UTC)


def form_instant(form, name: str, tz) -> datetime | None:
    """The form's field ``name`` read by :func:`parse_local_input`, its ``<name>_offset`` saying
    which reading of a repeated time is meant."""
    return parse_local_input(form.get(name, ""), tz, offset=form.get(f"{name}_offset"))


def choices_for(text: str) -> list[tuple[str, str]]:
    """The two readings of a form's local time the clocks pass twice ([] for any other text), for
    templates/_local_time.html."""
    try:
        parse_local_input(text, current_app.extensions["krisrutin.routine"].timezone)
    except LocalTimeError as error:
        return error.choices
    return []


def init_app(app) -> None:
    """Templates ask :func:`choices_for` to offer the readings of a repeated local time, and write
    instants with the ``when`` filter (:func:`when_text`)."""
    app.jinja_env.globals["local_time_choices"] = choices_for
    app.jinja_env.filters["when"] = _when_filter
