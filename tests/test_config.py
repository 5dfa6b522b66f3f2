"""Start-up configuration: environment settings and the routine file fail loudly and precisely."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from config.routine import RoutineConfigError, load_routine, parse_routine
from config.settings import ROOT, ConfigError, load_settings

ROUTINE_FILE = ROOT / "config" / "routine.toml"


def routine_data():
    with open(ROUTINE_FILE, "rb") as handle:
        return tomllib.load(handle)


def test_defaults_without_any_environment():
    settings = load_settings(environ={})
    assert settings.env == "development"
    assert settings.database_url == f"sqlite:///{ROOT / 'instance' / 'krisrutin.sqlite3'}"
    assert settings.timezone == "Europe/Stockholm"
    assert settings.secret_key_generated and len(settings.secret_key) >= 32
    assert settings.smtp_security == "starttls"
    assert settings.twilio_api_base_url == "https://api.twilio.com"
    assert settings.dispatch_batch_size == 10


def test_secret_key_is_refused_when_unset_in_production():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings(environ={"KRISRUTIN_ENV": "production"})
    settings = load_settings(environ={"KRISRUTIN_ENV": "production", "SECRET_KEY": "s" * 40})
    assert settings.is_production and not settings.secret_key_generated


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TIMEZONE", "Europe/Atlantis"),
        ("LOG_FORMAT", "xml"),
        ("SMTP_SECURITY", "tls-maybe"),
        ("SMTP_PORT", "twenty-five"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("KRISRUTIN_ENV", "staging"),
        ("DISPATCH_BATCH_SIZE", "0"),
        ("DISPATCH_BATCH_SIZE", "101"),
        ("DISPATCH_BATCH_SIZE", "ten"),
        ("IMAP_SECURITY", "tls-maybe"),
        ("IMAP_PORT", "imaps"),
        ("IMAP_PORT", "0"),
        ("IMAP_POLL_SECONDS", "1"),
    ],
)
def test_malformed_settings_name_the_variable(variable, value):
    with pytest.raises(ConfigError, match=variable):
        load_settings(environ={variable: value})


def test_the_supplier_mailbox_is_off_by_default_and_needs_a_login_when_on():
    settings = load_settings(environ={})
    assert settings.imap_host is None and (settings.imap_folder, settings.imap_poll_seconds) == ("INBOX", 60)
    with pytest.raises(ConfigError, match="IMAP_USERNAME and IMAP_PASSWORD"):
        load_settings(environ={"IMAP_HOST": "imap.kommun.example.se"})
    with pytest.raises(ConfigError, match="IMAP_DONE_FOLDER"):
        load_settings(
            environ={"IMAP_HOST": "h", "IMAP_USERNAME": "u", "IMAP_PASSWORD": "p", "IMAP_DONE_FOLDER": "INBOX"}
        )
    on = load_settings(environ={"IMAP_HOST": "h", "IMAP_USERNAME": "u", "IMAP_PASSWORD": "p"})
    assert (on.imap_port, on.imap_security) == (993, "ssl")
    plain = load_settings(
        environ={"IMAP_HOST": "h", "IMAP_USERNAME": "u", "IMAP_PASSWORD": "p", "IMAP_SECURITY": "starttls"}
    )
    assert plain.imap_port == 143


def test_postgres_urls_use_the_psycopg_driver():
    settings = load_settings(environ={"DATABASE_URL": "postgres://u@db/krisrutin"})
    assert settings.database_url == "postgresql+psycopg://u@db/krisrutin"


def test_shipped_routine_file_has_the_routines_defaults():
    policy = load_routine(ROUTINE_FILE)
    monday = policy.office_hours.regular.on(0)
    assert [(i.start.isoformat("minutes"), i.end.isoformat("minutes")) for i in monday] == [("07:45", "17:00")]
    assert policy.office_hours.regular.on(5) == () and policy.office_hours.regular.on(6) == ()
    (summer,) = policy.office_hours.seasons
    assert summer.months == {6, 7, 8}
    assert summer.hours.on(4)[0].end.isoformat("minutes") == "16:00"
    assert policy.monthly_check.send_day == 1
    assert policy.monthly_check.reminder_days == (3, 4)
    assert policy.monthly_check.call_day == 5
    assert set(policy.working_days.holiday_categories) == {"public", "de_facto"}
    # Alert fatigue: update reminders by e-mail once acknowledged; overdue visits folded hourly.
    assert policy.crisis.update_due_sms_after_acknowledge is False
    assert policy.crisis.visit_overdue_fold_minutes == 60
    # Paging: SMS + e-mail at once, a call at 5 and at 10 minutes, before the backup at 15.
    assert policy.paging.default_steps() == ((0, ("sms", "email")), (5, ("call",)), (10, ("call",)))
    assert policy.paging.latest_minute < policy.crisis.acknowledge_minutes
    assert policy.paging.call_team is False


def _break(path, value):
    data = routine_data()
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("office_hours", "hours"), ["7.45-17"], 'office_hours.hours[0]: expected an interval "HH:MM-HH:MM"'),
        (("office_hours", "hours"), ["17:00-07:45"], "start is before its end"),
        (("office_hours", "hours"), KeyError, "office_hours.hours: expected a list of intervals"),
        (("office_hours", "weekdays"), ["monday"], "office_hours.weekdays: expected a list of days"),
        (("office_hours", "by_weekday"), {"fri": ["07:00-12:00", "11:00-15:00"]}, "do not overlap"),
        (("office_hours", "seasons"), [{"name": "summer", "months": [13], "hours": ["07:45-16:00"]}], "months"),
        (("working_days", "holiday_country"), "XX", "working_days.holiday_country: expected a country the holidays"),
        (("working_days", "holiday_categories"), ["public", "pagan"], "working_days.holiday_categories"),
        (("working_days", "extra_non_working_days"), ["2026-02-30"], "extra_non_working_days[0]"),
        (("monthly_check", "send_day"), 31, "monthly_check.send_day: expected a whole number from 1 to 28"),
        (("monthly_check", "send_time"), "8 am", 'monthly_check.send_time: expected a local time "HH:MM"'),
        (("monthly_check", "reminder_days"), [4, 3], "monthly_check.reminder_days"),
        (("monthly_check", "call_day"), 4, "monthly_check.call_day: expected a day after the last reminder"),
        (("monthly_check", "call_day"), KeyError, "monthly_check.call_day"),
        (("monthly_check", "send_day_typo"), 1, "monthly_check.send_day_typo: expected no such key"),
        (
            ("crisis", "update_due_sms_after_acknowledge"),
            "yes",
            "crisis.update_due_sms_after_acknowledge: expected true",
        ),
        (("crisis", "visit_overdue_fold_minutes"), 0, "crisis.visit_overdue_fold_minutes: expected a whole number"),
        (("paging", "latest_minute"), 15, "paging.latest_minute: expected a minute before crisis.acknowledge_minutes"),
        (("paging", "call_after_minutes"), 8, "paging.call_after_minutes: expected at most half of"),
        (("paging", "call_team"), "no", "paging.call_team: expected true or false"),
        (("paging", "call_after"), 5, "paging.call_after: expected no such key"),
    ],
)
def test_a_wrong_routine_value_names_the_key_and_the_expected_form(path, value, message):
    with pytest.raises(RoutineConfigError) as error:
        parse_routine(_break(path, value), source="routine.toml")
    assert message in str(error.value)
    assert str(error.value).startswith("routine.toml: ")


def test_missing_or_broken_routine_file_is_reported(tmp_path):
    with pytest.raises(RoutineConfigError, match="file not found"):
        load_routine(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[office_hours\n", encoding="utf-8")
    with pytest.raises(RoutineConfigError, match="not valid TOML"):
        load_routine(broken)


def test_another_municipalitys_hours_are_expressible():
    """000_…: Mon–Thu 07–16 with lunch closed 12–13, Fri 07–15, 07–13 before a holiday."""
    data = routine_data()
    data["office_hours"] = {
        "weekdays": ["mon", "tue", "wed", "thu"],
        "hours": ["07:00-12:00", "13:00-16:00"],
        "by_weekday": {"fri": ["07:00-12:00", "13:00-15:00"]},
        "day_before_holiday": {"hours": ["07:00-13:00"]},
    }
    policy = parse_routine(data)
    assert len(policy.office_hours.regular.on(1)) == 2
    assert policy.office_hours.regular.on(4)[-1].end.isoformat("minutes") == "15:00"
    assert policy.office_hours.day_before_holiday[0].end.isoformat("minutes") == "13:00"
    assert policy.office_hours.seasons == ()


def _run_python(code, env_extra, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "KRISRUTIN_ENV")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def test_create_app_works_with_no_arguments_and_no_environment(tmp_path):
    # The default database lives under instance/; point ROUTINE_FILE nowhere else. Run in a
    # subprocess so the empty environment is real.
    code = "from app import create_app; app = create_app(); print(app.config['SQLALCHEMY_DATABASE_URI'])"
    result = _run_python(code, {"PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("instance/krisrutin.sqlite3")
    assert "SECRET_KEY is not set" in result.stderr


def test_development_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    import config.settings as settings_module

    monkeypatch.setattr(settings_module, "DEFAULT_INSTANCE_DIR", tmp_path)
    first = load_settings(environ={})
    second = load_settings(environ={})
    assert first.secret_key == second.secret_key and len(first.secret_key) == 64
    assert (tmp_path / "dev-secret-key").stat().st_mode & 0o077 == 0  # readable by the owner only
    testing = load_settings(environ={"KRISRUTIN_ENV": "testing"})
    assert testing.secret_key != first.secret_key


def test_start_up_stops_with_the_routine_error(tmp_path):
    bad = tmp_path / "routine.toml"
    bad.write_text(ROUTINE_FILE.read_text(encoding="utf-8").replace('send_time = "08:00"', 'send_time = "8"'))
    code = "from app import create_app; create_app()"
    result = _run_python(code, {"PYTHONPATH": str(ROOT), "ROUTINE_FILE": str(bad)}, cwd=tmp_path)
    assert result.returncode != 0
    assert 'monthly_check.send_time: expected a local time "HH:MM"' in result.stderr


def test_start_up_refuses_production_without_secret_key(tmp_path):
    code = "from app import create_app; create_app()"
    result = _run_python(code, {"PYTHONPATH": str(ROOT), "KRISRUTIN_ENV": "production"}, cwd=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY: must be set" in result.stderr


def test_routine_file_path_is_the_shipped_one_by_default():
    assert load_settings(environ={}).routine_file == Path(ROUTINE_FILE)
