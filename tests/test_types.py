from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from accounts.models import User
from core.extensions import db


def test_instants_come_back_timezone_aware_in_utc(app, make_user):
    user_id, _, _ = make_user("team")
    stockholm = datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Stockholm"), fold=1)  # the repeated hour
    with app.app_context():
        db.session.get(User, user_id).last_login_at = stockholm
        db.session.commit()
        db.session.expire_all()
        stored = db.session.get(User, user_id).last_login_at
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc)


def test_naive_datetimes_are_refused(app, make_user):
    user_id, _, _ = make_user("team")
    with app.app_context():
        db.session.get(User, user_id).last_login_at = datetime(2026, 1, 1, 12, 0)
        with pytest.raises(StatementError, match="timezone-aware"):
            db.session.commit()
        db.session.rollback()


def test_timestamps_are_stored_as_utc_in_the_database(app, make_user):
    user_id, _, _ = make_user("team")
    with app.app_context():
        db.session.get(User, user_id).last_login_at = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Stockholm"))
        db.session.commit()
        raw = db.session.execute(sa.text("SELECT last_login_at FROM users WHERE id = :id"), {"id": user_id}).scalar()
    if isinstance(raw, str):  # SQLite: naive UTC text
        assert raw.startswith("2026-07-01 10:00:00")
    else:  # PostgreSQL timestamptz
        assert raw == datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc)
