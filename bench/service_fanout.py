"""A big letter through the real service processes: ``python -m bench.service_fanout [--database-url URL]
[--contacts 3000 --providers 300] [--sms-latency-ms 200 --smtp-latency-ms 100] [--sms-max-concurrent N]
[--workers 4]``.

What issue 18 measured, and ``bench.incident_fanout`` does not: the service as it is deployed
("Running in production" in the README), not the dispatcher's threads and Flask's test client
inside the bench process. The world is ``bench.incident_fanout``'s (its functions, imported: P
providers, C contacts, the supplier Telia, the on-call officer and an API token), created in
this process with bulk inserts on a fresh SQLite file or a fresh PostgreSQL schema
(``bench.databases``), not timed. Then, as subprocesses with the application's settings in their
environment (``KRISRUTIN_ENV=production``, ``SECRET_KEY``, ``DATABASE_URL``, ``SMTP_*`` and
``TWILIO_*`` of the local peers, ``TWILIO_API_BASE_URL`` the Twilio peer's; ``LOG_LEVEL`` and
the concurrency settings left to the application's defaults unless set in this environment):

- gunicorn with the repository's ``gunicorn.conf.py``, ``--workers`` sync workers (4, as the
  README's production command) on a free port, ready when ``/readyz`` answers 200;
- one ``flask --app app dispatcher run``, up when its log says "dispatcher started" (the
  application's default ``LOG_LEVEL=INFO``; with a higher level the bench waits 5 s instead).

Both must then be idle (their CPU time stops growing: the workers that booted after the first
``/readyz`` have loaded the application) before the timed part starts, so that start-up is not
counted as the letter's CPU.

Timed: one ``POST /api/v1/notices`` over HTTP (urllib, a new connection) with the on-call
officer's token and an immediate letter to every provider (``outage_notice``, the same body as
``bench.incident_fanout``), then until the peers (``bench.peers``, two child processes, with the
latency and cap options of ``bench.latency``) hold every contact's e-mail and SMS and the outbox
holds nothing queued or being sent (the letter also goes to the supplier).

Reported, as ``bench.incident_fanout``: ``post_ms`` (the POST's wall time: until the answer has
been read; the worker queues the rest of a big letter's copies after its answer,
``crisis.incidents.letter_jobs``), ``queued_ms`` (from the start of the POST until the outbox holds
every contact's copies, polled with the peers), ``seconds`` (from the
start of the POST to the end), ``first_message_ms``, and per channel ``bench.latency.figures``
(first and last acceptance, per second, ratio to the limit, max in flight, 429s, duplicates,
lost). ``cpu_seconds`` here is the CPU of the service processes, not of this process: utime +
stime from ``/proc/<pid>/stat`` of each process tree (gunicorn's master and workers; the
dispatcher), after minus before, also per process (``gunicorn_cpu_s``, ``dispatcher_cpu_s``) and
per message; ``post_cpu_s`` is gunicorn's until the answer was read (its wall time beyond that is
waiting: for a core, for PostgreSQL, or for SQLite's write lock, which the dispatcher's commits
take too). The workers are fresh, as after a deployment: the POST is the first request its worker
handles, so the first rendering of the letter's templates is in it.
``peers_cpu_s``: the gateways' own CPU (the peers' two processes), reported, not counted; also
each (``smtp_peer_cpu_s``, ``sms_peer_cpu_s``).
PostgreSQL's own processes are not counted; ``machine_busy_cpu_s``
(``/proc/stat``: every process on the machine, other jobs included) says how busy the two cores
were. ``every_contact_once``: each of the register's contacts got exactly one e-mail and one SMS
(by address at the peers). ``load_average``: the 1-minute load at the start and the end.

Stopping: SIGTERM to the dispatcher (it gives back unsent claims) and to gunicorn's master, then
SIGKILL to what is left of each process tree after 30 s, also when the run failed. The temporary
folder (the SQLite file, the processes' logs) is removed after a run that reported, kept after
one that failed.

Prints one JSON line last, like the other benches.

``--pairs N`` (with a latency) measures what issue 18 asks, "within 1.25x of the same run against
gateways that answer at once, measured back to back": N pairs of two runs, one as above and one
with both latencies 0, one right after the other; the order alternates from pair to pair (0 ms
first in the first pair), so that a machine whose speed drifts (shared cores: here by a third
within minutes) weighs on both sides alike. Reported: each pair's two times, its ratio (latency
÷ 0 ms), each run's messages per second by channel, the peers' answer times (p50) in the
latency run, and whether every contact got each message once in both runs; the median ratio; how
many pairs were within 1.25x.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench import incident_fanout, latency
from bench.databases import fresh_database
from bench.drills import every_contact_once, free_port, peer_settings
from bench.incident_fanout import _nothing_open, outage_notice
from bench.peers import Peers

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-service-fanout-" * 3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_SECONDS = 30


# --- the processes' CPU time -------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command's name (which may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # the process has gone
        return None
    return text[text.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, ()))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live descendants (fields 14 and 15 of ``stat``)."""
    ticks = 0
    for member in process_tree(pid):
        fields = _stat_fields(member)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent not idle (``/proc/stat``), since boot."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


# --- starting and stopping the service --------------------------------------------------------------


def _tail(logfile: Path, characters: int = 2000) -> str:
    with contextlib.suppress(OSError):
        return logfile.read_text(errors="replace")[-characters:]
    return ""


def _start(command: list[str], env: dict, logfile: Path) -> subprocess.Popen:
    with logfile.open("wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_for_service(
    web: subprocess.Popen, port: int, dispatcher: subprocess.Popen, logs: dict, timeout: float
) -> None:
    """Until gunicorn answers /readyz and the dispatcher has logged its start; then until both are
    idle (CPU time grows by under 20 ms in half a second), at most ``timeout`` seconds in all."""
    deadline = time.monotonic() + timeout
    web_ready = dispatcher_up = False
    fallback = time.monotonic() + 5  # a LOG_LEVEL above INFO hides "dispatcher started"
    while not (web_ready and dispatcher_up):
        for name, process in (("gunicorn", web), ("dispatcher", dispatcher)):
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode}:\n{_tail(logs[name])}")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the service did not start in {timeout:.0f} s; logs: {logs['gunicorn']}, {logs['dispatcher']}"
            )
        web_ready = web_ready or _ready(f"http://127.0.0.1:{port}/readyz")
        dispatcher_up = dispatcher_up or "dispatcher started" in _tail(logs["dispatcher"], 100_000)
        if not dispatcher_up and os.environ.get("LOG_LEVEL", "INFO").upper() not in ("DEBUG", "INFO"):
            dispatcher_up = time.monotonic() > fallback
        time.sleep(0.2)
    before = tree_cpu_seconds(web.pid) + tree_cpu_seconds(dispatcher.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = tree_cpu_seconds(web.pid) + tree_cpu_seconds(dispatcher.pid)
        if now - before < 0.02:
            return
        before = now


def _started_at(pid: int) -> str | None:
    """The process's start time (field 22 of ``stat``): with the pid, it names one process."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None else None


def stop(process: subprocess.Popen | None) -> None:
    """SIGTERM; after ``STOP_SECONDS`` SIGKILL to each process of its tree (as it was when
    signalled) still running, recognised by pid and start time (a pid may have been reused)."""
    if process is None or process.poll() is not None:
        return
    tree = {pid: _started_at(pid) for pid in process_tree(process.pid)}
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_SECONDS)
    for pid, started in tree.items():
        if started is not None and _started_at(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


# --- the run ------------------------------------------------------------------------------------


def build_world(app, providers: int, contacts: int) -> str:
    """bench.incident_fanout's world; the engine is let go, since only the service's processes
    use the database from here on."""
    from core.extensions import db

    token = incident_fanout.build_world(app, providers, contacts)
    with app.app_context():
        db.engine.dispose()
    return token


def post_notice(port: int, token: str) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/notices",
        data=json.dumps(outage_notice()).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def _copies_queued(app) -> int:
    """How many of the letter's copies to contacts the outbox holds (whatever their state)."""
    from core.extensions import db
    from notifications.models import Message

    with app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count()).select_from(Message).where(Message.idempotency_key.like("letter:%:contact:%"))
        )
        db.session.remove()
    return count


def _outbox(app) -> dict:
    from core.extensions import db
    from notifications.models import Message, MessageStatus

    with app.app_context():
        counts = dict(db.session.execute(sa.select(Message.channel, sa.func.count()).group_by(Message.channel)).all())
        outbox = {
            "first_sent": db.session.scalar(sa.select(sa.func.min(Message.sent_at))),
            "queued": sum(counts.values()),
            "failed": db.session.scalar(
                sa.select(sa.func.count()).select_from(Message).where(Message.status == MessageStatus.FAILED.value)
            ),
            "per_channel": {"email": counts.get("email", 0), "sms": counts.get("sms", 0)},
        }
        db.session.remove()
    return outbox


def run(args) -> dict:
    """One run (see the module's docstring); the result the JSON line holds."""
    from app import create_app

    peers = Peers(**latency.peer_options(args))
    workdir = Path(tempfile.mkdtemp(prefix="krisrutin-service-"))
    database_url, drop = fresh_database(args.database_url, workdir)
    concurrency = {name: os.environ[name] for name in ("EMAIL_CONCURRENCY", "SMS_CONCURRENCY") if name in os.environ}
    web = dispatcher = None
    finished = False
    logs = {"gunicorn": workdir / "gunicorn.log", "dispatcher": workdir / "dispatcher.log"}
    try:
        port = free_port()
        service = {
            "DATABASE_URL": database_url,
            "KRISRUTIN_ENV": "production",
            "SECRET_KEY": SECRET_KEY,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            **peer_settings(peers.info),
        }
        # This process's application (the world, the outbox's counts) has the same settings,
        # but is "testing" (its fast password hashing; the service verifies the token only).
        app = create_app({**service, "KRISRUTIN_ENV": "testing", "LOG_LEVEL": "WARNING", **concurrency})
        settings = app.extensions["krisrutin.settings"]
        token = build_world(app, args.providers, args.contacts)

        env = {**os.environ, **service}
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
        gunicorn += ["-w", str(args.workers), "-b", f"127.0.0.1:{port}", "app:create_app()"]
        web = _start(gunicorn, env, logs["gunicorn"])
        dispatcher = _start(
            [sys.executable, "-m", "flask", "--app", "app", "dispatcher", "run", "--name", "bench-service"],
            env,
            logs["dispatcher"],
        )
        wait_for_service(web, port, dispatcher, logs, timeout=120)

        expected = 2 * args.contacts
        smtp_before, twilio_before = peers.counts()
        gauges_before = peers.gauges()
        load_before = latency.load_average()
        cpu_before = {
            "gunicorn": tree_cpu_seconds(web.pid),
            "dispatcher": tree_cpu_seconds(dispatcher.pid),
            "smtp_peer": tree_cpu_seconds(peers.pid("smtp")),
            "sms_peer": tree_cpu_seconds(peers.pid("sms")),
        }
        machine_before = machine_busy_seconds()
        posted_at = datetime.now(UTC)
        start_wall = time.time()
        started = time.perf_counter()
        status, answer = post_notice(port, token)
        post_ms = (time.perf_counter() - started) * 1000
        post_cpu = tree_cpu_seconds(web.pid) - cpu_before["gunicorn"]
        if status != 201:
            raise SystemExit(f"POST /api/v1/notices answered {status}: {answer[:500]}")
        deadline = time.monotonic() + args.timeout
        complete = False
        queued_ms = None
        while time.monotonic() < deadline:
            if queued_ms is None and _copies_queued(app) >= expected:
                queued_ms = (time.perf_counter() - started) * 1000
            smtp_count, twilio_count = peers.counts()
            if (smtp_count - smtp_before) + (twilio_count - twilio_before) >= expected and _nothing_open(app):
                complete = True
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        cpu = {
            "gunicorn": tree_cpu_seconds(web.pid) - cpu_before["gunicorn"],
            "dispatcher": tree_cpu_seconds(dispatcher.pid) - cpu_before["dispatcher"],
            "smtp_peer": tree_cpu_seconds(peers.pid("smtp")) - cpu_before["smtp_peer"],
            "sms_peer": tree_cpu_seconds(peers.pid("sms")) - cpu_before["sms_peer"],
        }
        machine = machine_busy_seconds() - machine_before
        load_after = latency.load_average()
        outbox = _outbox(app)
        smtp_after, twilio_after = peers.counts()
        arrived = (smtp_after - smtp_before) + (twilio_after - twilio_before)
        figures = latency.figures(
            args=args,
            settings=settings,
            peers=peers,
            gauges_before=gauges_before,
            counts_before=(smtp_before, twilio_before),
            queued=outbox["per_channel"],
            start_wall=start_wall,
            cpu_seconds=cpu["gunicorn"] + cpu["dispatcher"],
        )
        first_sent = outbox["first_sent"]
        finished = True
        return {
            "contacts": args.contacts,
            "providers": args.providers,
            "database": database_url.split(":", 1)[0],
            "processes": f"gunicorn -w {args.workers} (sync), 1 flask dispatcher run",
            "email_workers": settings.email_concurrency,
            "sms_workers": settings.sms_concurrency,
            "post_ms": round(post_ms, 1),
            "post_cpu_s": round(post_cpu, 2),
            "queued_ms": round(queued_ms, 1) if queued_ms is not None else None,
            "messages_queued": outbox["queued"],
            "arrived_at_gateways": arrived,
            "failed": outbox["failed"],
            "complete": complete,
            "seconds": round(seconds, 2),
            "first_message_ms": round((first_sent - posted_at).total_seconds() * 1000, 1) if first_sent else None,
            "every_contact_once": every_contact_once(peers.tally(), args.contacts),
            "load_average": [load_before, load_after],
            **figures,
            "gunicorn_cpu_s": round(cpu["gunicorn"], 2),
            "dispatcher_cpu_s": round(cpu["dispatcher"], 2),
            "gunicorn_cpu_ms_per_message": round(1000 * cpu["gunicorn"] / arrived, 3) if arrived else None,
            "dispatcher_cpu_ms_per_message": round(1000 * cpu["dispatcher"] / arrived, 3) if arrived else None,
            "peers_cpu_s": round(cpu["smtp_peer"] + cpu["sms_peer"], 2),
            "smtp_peer_cpu_s": round(cpu["smtp_peer"], 2),
            "sms_peer_cpu_s": round(cpu["sms_peer"], 2),
            "machine_busy_cpu_s": round(machine, 1),
        }
    finally:
        stop(dispatcher)
        stop(web)
        peers.stop()
        drop()
        if finished:  # else the logs named in the error stay
            shutil.rmtree(workdir, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=300)
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn's sync workers (the README's production -w 4)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for every message after the POST")
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="run this many pairs with and without the latency, back to back, and report their ratios",
    )
    latency.add_arguments(parser)
    return parser


RATIO_TARGET = 1.25  # issue 18: latency may cost at most a quarter


def run_pairs(args) -> dict:
    """``args.pairs`` pairs of a run with ``args``' latencies and one without (see the module's
    docstring)."""
    if not (args.sms_latency_ms or args.smtp_latency_ms):
        raise SystemExit("--pairs compares runs with and without latency: give --sms-latency-ms or --smtp-latency-ms")
    zero = argparse.Namespace(**{**vars(args), "sms_latency_ms": 0, "smtp_latency_ms": 0})
    pairs, database = [], None
    for number in range(args.pairs):
        results = {}
        first = "zero" if number % 2 == 0 else "latency"
        for name, options in (("zero", zero), ("latency", args))[:: 1 if first == "zero" else -1]:
            results[name] = run(options)
            print(f"pair {number + 1}, {name}: {results[name]['seconds']} s", flush=True)
        database = results["zero"]["database"]
        ratio = results["latency"]["seconds"] / results["zero"]["seconds"]
        pairs.append(
            {
                "zero_s": results["zero"]["seconds"],
                "latency_s": results["latency"]["seconds"],
                "ratio": round(ratio, 3),
                "first": first,
                "every_contact_once": all(result["every_contact_once"] for result in results.values()),
                "per_s": {
                    name: {channel: result[channel]["per_s"] for channel in ("email", "sms")}
                    for name, result in results.items()
                },
                # Above the latency: the peer's own queue bound the run (bench.latency).
                "peer_answer_p50_ms": {
                    channel: results["latency"][channel]["peer_answer_p50_ms"] for channel in ("email", "sms")
                },
                "load_average": results["zero"]["load_average"] + results["latency"]["load_average"],
            }
        )
    return {
        "database": database,
        "contacts": args.contacts,
        "sms_latency_ms": args.sms_latency_ms,
        "smtp_latency_ms": args.smtp_latency_ms,
        "pairs": pairs,
        "median_ratio": round(statistics.median(pair["ratio"] for pair in pairs), 3),
        "within_target": sum(pair["ratio"] <= RATIO_TARGET for pair in pairs),
        "target": RATIO_TARGET,
        "every_contact_once": all(pair["every_contact_once"] for pair in pairs),
    }


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.pairs:
        result = run_pairs(args)
        print(
            f"{result['within_target']} of {len(result['pairs'])} pairs within {RATIO_TARGET}x; "
            f"median ratio {result['median_ratio']}"
        )
        print(json.dumps(result))
        return
    result = run(args)
    latency.print_summary(result)
    print(
        f"POST {result['post_ms']} ms; every copy queued {result['queued_ms']} ms; all in {result['seconds']} s; "
        f"CPU gunicorn {result['gunicorn_cpu_s']} s, "
        f"dispatcher {result['dispatcher_cpu_s']} s, peers {result['peers_cpu_s']} s; "
        f"machine busy {result['machine_busy_cpu_s']} s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
