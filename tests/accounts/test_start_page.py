from datetime import UTC, datetime

from tests.conftest import log_in


def test_start_page_shows_the_team_in_office_hours_and_the_months_check(client, make_user):
    _, username, password = make_user("on_call")
    log_in(client, username, password)
    html = client.get("/").get_data(as_text=True)  # Monday 2026-11-23 10:00 local
    assert "Välfärdsteknikteamet" in html and "kontorstid" in html
    assert "2026-11-23 17:00" in html  # when it changes
    assert "2026-11-02" in html and "2026-11-05, 2026-11-06" in html and "2026-11-09" in html


def test_start_page_shows_the_on_call_officer_at_night_on_a_holiday(client, clock, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    clock.set(datetime(2026, 12, 24, 21, 0, tzinfo=UTC))  # julafton, 22:00 local
    html = client.get("/").get_data(as_text=True)
    assert "Tjänsteman i beredskap (TIB)" in html
    assert "2026-12-28 07:45" in html
    assert "2026-12-01" in html  # December's check went out on Tuesday the 1st
