"""Failure drills: ``python -m bench.drills [--only smtp_outage,pg_restart,two_schedulers] [--quick]``.

Each drill prints one JSON line with what was expected and what was counted, and ``ok``:

``smtp_outage``
    An incident letter to C contacts (``POST /api/v1/notices`` by the on-call officer's token,
    through the WSGI app) is sent by two real ``flask dispatcher run`` processes to the local
    SMTP and Twilio peers (child processes). Once the first e-mails have arrived the SMTP
    server stops for ``--smtp-down-seconds`` (default 120) and starts again on the same port.
    Counted at the peers: every contact's e-mail and SMS arrived, none twice (by Message-ID and
    by the SMS status-callback's message id); and while SMTP was down the team was warned: the
    e-mail channel ``degraded`` in ``/readyz`` and the warning banner on a team member's page.

``pg_restart``
    A throw-away PostgreSQL cluster (``initdb`` as the postgres user in a temporary directory,
    trust auth, a free port; stopped and deleted at the end; the shared server on 5432 is never
    touched). The month's check is opened there by a scheduler (APScheduler ticking every
    second, in threads, at a clock set to the check's send instant and running on) and sent by
    a dispatcher (threads) to the peers. The cluster is restarted twice: ``pg_ctl restart -m
    immediate`` (a crash) just after the send instant, while the tick opens the check, and
    ``-m fast`` when a quarter of the messages have arrived; then, at half, it is stopped for
    ``--pg-down-seconds`` (default 5) and started again. The dispatcher's lease is 20 s here, and
    the drill waits two leases after the last arrival, so that a message whose ``sent`` record
    was lost and which is therefore sent again shows up. Counted: every contact got its e-mail and SMS
    exactly once, and the scheduler ticked and the dispatcher sent after the restart without
    being restarted themselves.

``two_schedulers``
    Two scheduler processes (separate processes, each with the application and the tick) on one
    PostgreSQL schema share a simulated clock (a shared value the drill advances by
    ``--tick-minutes``, default 10, from the 1st of January 2027 00:00 local to the 1st of
    February; both processes tick at every step, at the same time). A dispatcher (threads, the
    same clock) sends what the step queued to the peers before the clock moves on. Nobody
    answers the check, so every contact gets the invitation and two reminders by e-mail and
    SMS: 6·C messages. Counted: messages in the
    outbox, arrivals at the peers, duplicates at the peers (by Message-ID and message id).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.databases import fresh_database
from bench.incident_fanout import _create_register, outage_notice
from bench.peers import Peers

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATABASE = "postgresql://postgres@127.0.0.1:5432/test"
SECRET_KEY = "bench-drills-" * 4
PASSWORD = "bench-lösenord-12345"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
LEASE_SECONDS = 20  # pg_restart's dispatcher lease


def log(text: str) -> None:
    print(f"[drills {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def peer_settings(info: dict) -> dict:
    return {
        "SMTP_HOST": info["smtp_host"],
        "SMTP_PORT": str(info["smtp_port"]),
        "SMTP_SECURITY": "none",
        "MAIL_FROM": "valfardsteknik@example.se",
        "TWILIO_ACCOUNT_SID": info["account_sid"],
        "TWILIO_AUTH_TOKEN": info["auth_token"],
        "TWILIO_FROM": "Krisrutin",
        "TWILIO_API_BASE_URL": info["twilio_url"],
    }


def base_settings(database_url: str, info: dict) -> dict:
    return {
        "DATABASE_URL": database_url,
        "KRISRUTIN_ENV": "testing",
        "SECRET_KEY": SECRET_KEY,
        "LOG_LEVEL": "ERROR",
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        **peer_settings(info),
    }


def register_addresses(contacts: int) -> tuple[set[str], set[str]]:
    """The e-mail addresses and mobile numbers of the register's C contacts (``_create_register``)."""
    return (
        {f"kontakt{n}@omsorg.example.se" for n in range(contacts)},
        {f"+4670{n:07d}" for n in range(contacts)},
    )


def to_register(tally: dict, contacts: int) -> int:
    """Messages that arrived for the register's contacts (the team's own alerts left out)."""
    emails, mobiles = register_addresses(contacts)
    return sum(n for a, n in tally["email_to"].items() if a in emails) + sum(
        n for a, n in tally["sms_to"].items() if a in mobiles
    )


def every_contact_at_least_once(tally: dict, contacts: int) -> bool:
    emails, mobiles = register_addresses(contacts)
    return all(tally["email_to"][address] >= 1 for address in emails) and all(
        tally["sms_to"][number] >= 1 for number in mobiles
    )


def every_contact_once(tally: dict, contacts: int, per_contact: int = 1) -> bool:
    """Each of the register's C contacts got exactly ``per_contact`` e-mails and SMS."""
    emails, mobiles = register_addresses(contacts)
    return all(tally["email_to"][address] == per_contact for address in emails) and all(
        tally["sms_to"][number] == per_contact for number in mobiles
    )


# --- drill 1: the SMTP server goes away during a letter fan-out ---------------------------------------


def _log_in(client, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    if answer.status_code != 302:
        raise RuntimeError(f"login answered {answer.status_code}")


def drill_smtp_outage(args) -> dict:
    from flask_migrate import upgrade

    from accounts.roles import Role
    from accounts.service import create_token, create_user
    from app import create_app
    from core.extensions import db
    from crisis.incidents.models import Supplier

    contacts, providers = args.contacts, max(1, args.contacts // 10)
    peers = Peers()
    database_url, drop = fresh_database(args.database_url, Path(tempfile.mkdtemp(prefix="krisrutin-drill-")))
    dispatchers: list[subprocess.Popen] = []
    try:
        settings = base_settings(database_url, peers.info)
        app = create_app(settings)
        with app.app_context():
            upgrade()
            now = datetime.now(UTC)
            _create_register(providers, contacts, now - timedelta(days=30))
            db.session.add(Supplier(name="Telia", email="drift@telia.example.se", is_active=True, created_at=now))
            officer = create_user(
                db_session=db.session,
                username="tib",
                display_name="Tove",
                role=Role.ON_CALL,
                now=now,
                password=PASSWORD,
            )
            create_user(
                db_session=db.session,
                username="team",
                display_name="Teamet",
                role=Role.TEAM,
                now=now,
                password=PASSWORD,
            )
            db.session.flush()
            _token, token = create_token(db_session=db.session, user=officer, name="drill", now=now)
            db.session.commit()

        env = {**os.environ, **settings, "LOG_LEVEL": "WARNING"}
        for number in range(2):
            logfile = open(Path(tempfile.gettempdir()) / f"krisrutin-drill-dispatcher-{number}.log", "wb")  # noqa: SIM115
            dispatchers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "flask", "--app", "app", "dispatcher", "run", "--name", f"drill-{number}"],
                    cwd=ROOT,
                    env=env,
                    stdout=logfile,
                    stderr=subprocess.STDOUT,
                )
            )
        time.sleep(3)  # the dispatchers start (their first poll finds nothing)
        client = app.test_client()
        team = app.test_client()
        _log_in(team, "team")
        body = outage_notice("Gör fysiska tillsyner.")
        # buffered: the answer is closed at once, as a server does, and the letter's rest queued
        answer = client.post("/api/v1/notices", json=body, headers={"Authorization": f"Bearer {token}"}, buffered=True)
        if answer.status_code != 201:
            raise RuntimeError(f"POST /api/v1/notices answered {answer.status_code}")
        log(f"smtp_outage: letter to {contacts} contacts posted; two dispatcher processes sending")
        wait_until(lambda: peers.ask("counts")[0] >= max(1, contacts // 20), 120, 0.05)
        peers.ask("smtp_stop")
        emails_before = peers.ask("counts")[0]
        down_at = time.monotonic()
        log(f"smtp_outage: SMTP stopped after {emails_before} e-mails; down for {args.smtp_down_seconds} s")
        readyz_warned = banner_warned = False
        warned_after = None
        while time.monotonic() - down_at < args.smtp_down_seconds:
            ready = client.get("/readyz").get_json()
            if ready.get("channels", {}).get("email") == "degraded" and not readyz_warned:
                readyz_warned = True
                warned_after = round(time.monotonic() - down_at, 1)
                log(f"smtp_outage: /readyz reports e-mail degraded after {warned_after} s: {ready.get('warnings')}")
            if not banner_warned and 'class="channel-warning"' in team.get("/").get_data(as_text=True):
                banner_warned = True
                log("smtp_outage: the team's start page shows the warning banner")
            time.sleep(2)
        peers.ask("smtp_start")
        log("smtp_outage: SMTP started again on the same port")
        up_at = time.monotonic()
        expected = 2 * contacts
        complete = wait_until(lambda: to_register(peers.tally(), contacts) >= expected, args.recover_timeout, 2)
        recovered_seconds = round(time.monotonic() - up_at, 1)
        time.sleep(3)  # anything sent twice would arrive now
        still_warned = client.get("/readyz").get_json().get("channels", {}).get("email") == "degraded"
        tally = peers.tally(stopped_after=emails_before)
        result = {
            "drill": "smtp_outage",
            "smtp_down_seconds": args.smtp_down_seconds,
            "contacts": contacts,
            "expected_messages": expected,
            "delivered": to_register(tally, contacts),
            "to_staff": tally["emails"] + tally["texts"] - to_register(tally, contacts),
            "duplicates": tally["duplicates"],
            # Sent as the server went away: it took the message but its "250 OK" never reached
            # the dispatcher, which therefore sent it again (same Message-ID) once SMTP was back.
            "duplicates_taken_as_smtp_stopped": tally["duplicates_across_stop"],
            "emails_before_outage": emails_before,
            "all_delivered_seconds_after_restart": recovered_seconds if complete else None,
            "team_warned": readyz_warned and banner_warned,
            "readyz_degraded_after_s": warned_after,
            "banner_shown": banner_warned,
            "warning_cleared": not still_warned,
        }
        # SMTP cannot tell a sender whether a message whose reply was lost was taken (RFC 1047):
        # such a message is sent again, at least once rather than at most once. Any other
        # duplicate, or a contact without their e-mail and SMS, fails the drill.
        result["ok"] = bool(
            complete
            and tally["duplicates"] == tally["duplicates_across_stop"]
            and every_contact_at_least_once(tally, contacts)
            and result["team_warned"]
        )
        result["every_contact_email_and_sms"] = every_contact_at_least_once(tally, contacts)
        return result
    finally:
        for process in dispatchers:
            process.send_signal(signal.SIGTERM)
        for process in dispatchers:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        peers.stop()
        drop()


# --- drill 2: PostgreSQL restarted during the monthly check ---------------------------------------------


class Cluster:
    """A throw-away PostgreSQL cluster owned by the postgres user, on a free port."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="krisrutin-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        self._start()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _start(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            *("-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "start"),
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
        )

    def _as_postgres(self, *command: str) -> None:
        # No pipes: a server started by pg_ctl would inherit them and keep this call waiting.
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
        )

    def restart(self, mode: str = "fast") -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-m",
            mode,
            "-w",
            "restart",
        )

    def stop_start(self, down_seconds: float) -> None:
        pg_ctl = str(PG_BIN / "pg_ctl")
        self._as_postgres(pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")
        time.sleep(down_seconds)
        self._start()

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class RunningClock:
    """Real time, shifted to start at ``start``: time runs on (retries fall due), from the
    instant the drill needs."""

    def __init__(self, start: datetime):
        self._offset = start - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


def drill_pg_restart(args) -> dict:
    from flask_migrate import upgrade

    from app import create_app
    from core.extensions import db
    from notifications.dispatcher import Dispatcher
    from scheduling.models import SchedulerHeartbeat
    from scheduling.process import run_scheduler
    from worktime.calendar import check_plan, send_at

    contacts = args.contacts
    peers = Peers()
    cluster = Cluster()
    log(f"pg_restart: throw-away cluster on port {cluster.port} in {cluster.dir}")
    stop_scheduler = threading.Event()
    scheduler_thread = dispatcher = None
    try:
        # A short lease, so that a message sent twice because its "sent" record was lost shows
        # within the drill (it would after 120 s by default).
        settings = {**base_settings(cluster.url, peers.info), "DISPATCH_LEASE_SECONDS": str(LEASE_SECONDS)}
        probe = create_app(settings)
        policy = probe.extensions["krisrutin.routine"]
        instant = send_at(check_plan(2027, 1, policy), policy)
        clock = RunningClock(instant - timedelta(seconds=5))
        app = create_app(settings, clock=clock)
        with app.app_context():
            upgrade()
            _create_register(max(1, contacts // 10), contacts, instant - timedelta(days=30))
            db.session.remove()
        dispatcher = Dispatcher(app, name="drill-dispatcher")
        dispatcher.start()
        scheduler_thread = threading.Thread(
            target=run_scheduler,
            args=(app,),
            kwargs={"interval_seconds": 1, "name": "drill-scheduler", "stop": stop_scheduler},
            daemon=True,
        )
        scheduler_thread.start()
        expected = 2 * contacts
        log(f"pg_restart: scheduler and dispatcher running; the check opens for {contacts} contacts")
        # First restart (immediate: a crash, no shutdown checkpoint) just after the send instant,
        # while the tick opens the check and queues its batches; the second (fast) mid-sending.
        wait_until(lambda: clock.now() >= instant + timedelta(seconds=0.3), 30, 0.02)
        cluster.restart("immediate")
        opening_arrived = peers.arrived()
        log(f"pg_restart: cluster restarted (-m immediate) as the check opened ({opening_arrived} messages arrived)")
        wait_until(lambda: peers.arrived() >= expected // 4, 300, 0.05)
        before = peers.arrived()
        restarted_at_clock = clock.now()
        started = time.monotonic()
        cluster.restart()
        took = time.monotonic() - started
        log(f"pg_restart: cluster restarted (pg_ctl restart -m fast, {took:.1f} s) after {before} messages")
        if args.pg_down_seconds:
            # A longer outage: stopped, down for a while, started again.
            wait_until(lambda: peers.arrived() >= expected // 2, 300, 0.05)
            cluster.stop_start(args.pg_down_seconds)
            log(f"pg_restart: cluster down for {args.pg_down_seconds} s after {peers.arrived()} messages")
        complete = wait_until(lambda: peers.arrived() >= expected, args.recover_timeout, 1)
        finished_seconds = round(time.monotonic() - started, 1)
        # A message whose "sent" record was lost is sent again when its lease runs out: wait for that.
        time.sleep(2 * LEASE_SECONDS + 5)
        tally = peers.tally()
        with app.app_context():
            beat = db.session.scalars(
                sa.select(SchedulerHeartbeat).where(SchedulerHeartbeat.name == "drill-scheduler")
            ).first()
            ticked_after = beat is not None and beat.last_tick_at > restarted_at_clock + timedelta(seconds=2)
            db.session.remove()
        result = {
            "drill": "pg_restart",
            "contacts": contacts,
            "expected_messages": expected,
            "delivered": tally["emails"] + tally["texts"],
            "duplicates": tally["duplicates"],
            "duplicated_emails": tally["emails"] - contacts,
            "duplicated_texts": tally["texts"] - contacts,
            "restarts": ["immediate, as the check opened", "fast, mid-sending"]
            + ([f"stopped {args.pg_down_seconds:g} s, at half"] if args.pg_down_seconds else []),
            "arrived_before_first_restart": opening_arrived,
            "arrived_before_restart": before,
            "all_delivered_seconds_after_restart": finished_seconds if complete else None,
            "every_contact_email_and_sms_once": every_contact_once(tally, contacts),
            "scheduler_ticked_after_restart": ticked_after,
            "dispatcher_sent_after_restart": tally["emails"] + tally["texts"] > before,
        }
        result["ok"] = bool(
            complete
            and tally["duplicates"] == 0
            and result["every_contact_email_and_sms_once"]
            and ticked_after
            and result["dispatcher_sent_after_restart"]
        )
        return result
    finally:
        stop_scheduler.set()
        if scheduler_thread is not None:
            scheduler_thread.join(30)
        if dispatcher is not None:
            dispatcher.stop()
        peers.stop()
        cluster.remove()


# --- drill 3: two schedulers, one simulated month ---------------------------------------------------------


class SharedClock:
    """The drill's simulated time, a POSIX timestamp in shared memory."""

    def __init__(self, value):
        self._value = value

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._value.value, UTC)


def _scheduler_process(name: str, settings: dict, value, barrier, done) -> None:
    from app import create_app
    from scheduling.process import run_tick

    app = create_app(settings, clock=SharedClock(value))
    while True:
        barrier.wait()
        if done.value:
            return
        run_tick(app, name)
        barrier.wait()


def drill_two_schedulers(args) -> dict:
    from flask_migrate import upgrade

    from app import create_app
    from core.extensions import db
    from notifications.dispatcher import Dispatcher
    from notifications.models import Message, MessageStatus
    from scheduling.models import ScheduledTask

    contacts = args.contacts
    peers = Peers()
    database_url, drop = fresh_database(args.database_url, Path(tempfile.mkdtemp(prefix="krisrutin-drill-")))
    context = multiprocessing.get_context("spawn")
    value = context.Value("d", 0.0)
    done = context.Value("b", 0)
    barrier = context.Barrier(3)
    processes = []
    dispatcher = None
    try:
        settings = base_settings(database_url, peers.info)
        app = create_app(settings, clock=SharedClock(value))
        tz = app.extensions["krisrutin.routine"].timezone
        start = datetime(2027, 1, 1, tzinfo=tz).astimezone(UTC)
        end = datetime(2027, 2, 1, tzinfo=tz).astimezone(UTC)
        value.value = start.timestamp()
        with app.app_context():
            upgrade()
            _create_register(max(1, contacts // 10), contacts, start - timedelta(days=30))
            db.session.remove()
        for number in range(2):
            process = context.Process(
                target=_scheduler_process, args=(f"drill-scheduler-{number}", settings, value, barrier, done)
            )
            process.start()
            processes.append(process)
        # The dispatcher drains what the tick queued while the simulated clock stands still: on a
        # clock that runs ahead by minutes per step its claims' leases (120 s) would expire while
        # it sends, and the messages would be claimed and sent again (an artefact of the drill).
        dispatcher = Dispatcher(app, name="drill-dispatcher")
        step = timedelta(minutes=args.tick_minutes)
        steps = int((end - start) / step)
        log(f"two_schedulers: {steps} steps of {args.tick_minutes} simulated minutes, two scheduler processes")
        started = time.monotonic()
        at = start
        for number in range(steps):
            value.value = at.timestamp()
            barrier.wait(120)  # both tick at ``at``
            barrier.wait(600)  # both done
            with app.app_context():
                queued = db.session.scalar(
                    sa.select(sa.func.count()).select_from(Message).where(Message.status == MessageStatus.QUEUED.value)
                )
                db.session.remove()
            if queued:
                dispatcher.run_until_idle(timeout=600)
            at += step
            if number % 1000 == 999:
                log(f"two_schedulers: {at.astimezone(tz):%Y-%m-%d %H:%M} after {time.monotonic() - started:.0f} s")
        simulated_seconds = round(time.monotonic() - started, 1)
        done.value = 1
        barrier.wait(60)
        for process in processes:
            process.join(30)
        with app.app_context():

            def settled() -> bool:
                open_count = db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Message)
                    .where(Message.status.in_([MessageStatus.QUEUED.value, MessageStatus.SENDING.value]))
                )
                db.session.rollback()
                return open_count == 0

            wait_until(settled, args.recover_timeout, 1)
            outbox = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
            check_messages = db.session.scalar(
                sa.select(sa.func.count()).select_from(Message).where(Message.idempotency_key.like("check:%"))
            )
            sent = db.session.scalar(
                sa.select(sa.func.count()).select_from(Message).where(Message.status == MessageStatus.SENT.value)
            )
            failed_tasks = db.session.scalar(
                sa.select(sa.func.count()).select_from(ScheduledTask).where(ScheduledTask.status == "failed")
            )
            tasks = dict(
                db.session.execute(sa.select(ScheduledTask.kind, sa.func.count()).group_by(ScheduledTask.kind)).all()
            )
            db.session.remove()
        time.sleep(2)
        tally = peers.tally()
        expected = 6 * contacts
        result = {
            "drill": "two_schedulers",
            "contacts": contacts,
            "tick_minutes": args.tick_minutes,
            "ticks_per_scheduler": steps,
            "seconds": simulated_seconds,
            "expected_messages": expected,
            "outbox_messages": outbox,
            "check_messages": check_messages,
            "sent": sent,
            "delivered": tally["emails"] + tally["texts"],
            "duplicates": tally["duplicates"],
            "tasks": tasks,
            "failed_tasks": failed_tasks,
        }
        result["ok"] = bool(
            check_messages == expected
            and tally["emails"] + tally["texts"] == outbox
            and tally["duplicates"] == 0
            and every_contact_once(tally, contacts, per_contact=3)
            and failed_tasks == 0
        )
        return result
    finally:
        done.value = 1
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(10)
        peers.stop()
        drop()


DRILLS = {"smtp_outage": drill_smtp_outage, "pg_restart": drill_pg_restart, "two_schedulers": drill_two_schedulers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DRILLS), help="comma-separated drills to run")
    parser.add_argument(
        "--quick", action="store_true", help="smaller and shorter: 200 contacts, SMTP down 30 s, 30-minute ticks"
    )
    parser.add_argument(
        "--contacts", type=int, default=None, help="default 1000 (smtp_outage, pg_restart), 300 (two_schedulers)"
    )
    parser.add_argument("--smtp-down-seconds", type=float, default=None, help="default 120")
    parser.add_argument(
        "--pg-down-seconds", type=float, default=5, help="pg_restart: a third outage, stopped this long (0: none)"
    )
    parser.add_argument("--tick-minutes", type=int, default=None, help="two_schedulers' step, default 10")
    parser.add_argument("--recover-timeout", type=float, default=600, help="seconds to wait for everything to arrive")
    parser.add_argument("--database-url", default=SHARED_DATABASE, help="PostgreSQL for smtp_outage and two_schedulers")
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in DRILLS]
    if unknown:
        parser.error(f"unknown drill(s): {', '.join(unknown)}; choose from {', '.join(DRILLS)}")
    failed = False
    for name in names:
        drill_args = argparse.Namespace(**vars(args))
        default_contacts = 300 if name == "two_schedulers" else 1000
        drill_args.contacts = args.contacts or (200 if args.quick else default_contacts)
        drill_args.smtp_down_seconds = args.smtp_down_seconds or (30 if args.quick else 120)
        drill_args.tick_minutes = args.tick_minutes or (30 if args.quick else 10)
        started = time.monotonic()
        result = DRILLS[name](drill_args)
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        result["load_average"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result), flush=True)
        failed = failed or not result["ok"]
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
