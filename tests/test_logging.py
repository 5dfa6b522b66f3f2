"""Logs are JSON lines on request and never carry personal data."""

import json
import os
import subprocess
import sys
import textwrap

from config.settings import ROOT

SCENARIO = textwrap.dedent(
    """
    import re
    from datetime import datetime, timezone
    from app import create_app
    from core.clock import FixedClock
    from core.extensions import db
    from accounts.service import create_user
    from core.demo import load_demo_data
    from flask_migrate import upgrade

    app = create_app(clock=FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)))
    with app.app_context():
        upgrade()
        create_user(db_session=db.session, username="karin.personlig", display_name="Karin Personligsson",
                    role="team", now=datetime(2026, 11, 23, tzinfo=timezone.utc), password="hemligt-lösenord-123")
        db.session.commit()
        load_demo_data()
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "karin.personlig", "password": "fel-lösenord-999", "csrf_token": token})
    client.post("/login?next=/", data={"username": "karin.personlig", "password": "hemligt-lösenord-123",
                "csrf_token": token})
    client.get("/")
    client.get("/does-not-exist?phone=+46701740605")
    """
)

PERSONAL = ("karin.personlig", "Karin", "Personligsson", "hemligt", "fel-lösenord", "+46701740605", "46701740605")


def test_json_logs_of_a_login_scenario_hold_no_personal_data(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "KRISRUTIN_ENV")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "DEBUG",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", SCENARIO], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    requests = [e for e in entries if e["msg"] == "request"]
    assert [(e["route"], e["status"]) for e in requests] == [
        ("/login", 200),
        ("/login", 400),
        ("/login", 302),
        ("/", 200),
        (None, 404),
    ]
    assert any(e["msg"] == "login failed" for e in entries)
    assert any(e["msg"] == "login" and isinstance(e["user_id"], int) for e in entries)
    for needle in PERSONAL:
        assert needle not in result.stderr, needle
