from datetime import UTC, datetime

from tests.conftest import log_in


def test_start_page_shows_the_team_in_office_hours_and_the_months_check(client, make_user):
    _, username, password = make_user("on_call")
    log_in(client, username, password)
    html = client.get("/").get_data(as_text=True)  # Monday 2026-11-23 10:00 local
    assert "Välfärdsteknikteamet" in html and "kontorstid" in html
    assert '<time datetime="2026-11-23 17:00">måndag 23 november kl. 17:00</time>' in html  # when it changes
    assert '<time datetime="2026-11-02">måndag 2 november</time>' in html  # sent on
    assert 'datetime="2026-11-05"' in html and 'datetime="2026-11-06"' in html  # reminders
    assert '<time datetime="2026-11-09">måndag 9 november</time>' in html  # phone calls


def test_start_page_shows_the_on_call_officer_at_night_on_a_holiday(client, clock, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    clock.set(datetime(2026, 12, 24, 21, 0, tzinfo=UTC))  # julafton, 22:00 local
    html = client.get("/").get_data(as_text=True)
    assert "Tjänsteman i beredskap (TIB)" in html
    assert '<time datetime="2026-12-28 07:45">måndag 28 december kl. 07:45</time>' in html
    assert '<time datetime="2026-12-01">tisdag 1 december</time>' in html  # December's check


def test_start_page_speaks_english_when_asked(client, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    html = client.get("/?lang=en").get_data(as_text=True)
    assert "Responsible now:" in html and "To do now" in html
    assert "Monday 2 November" in html
    assert "Monday 23 November at 17:00" in html
