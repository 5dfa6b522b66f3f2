"""Fan-out benchmark: ``python -m bench.fanout --messages 10000 [--database-url URL]``.

Sends N messages, half e-mail and half SMS, through the real outbox and dispatcher to a local
SMTP server (aiosmtpd) and a local Twilio-speaking HTTP server, and in the same run measures the
raw rate of the same gateways driven by a bare loop with the same adapters (smtplib, the twilio
library), the same concurrency and the same messages (the subject, text, HTML, SMS text and
status-callback address of messages the dispatcher is about to send): N/2 messages before the
dispatcher's run and N/2 after it, the raw rate being N over both times, so that drift in the
machine's speed (shared cores) weighs on both sides of the ratio. While the bulk runs, urgent messages are committed at
intervals; their latency is from the commit that queued them to our record of the gateway's
acceptance (``sent_at - created_at``), an upper bound of commit-to-acceptance.

The two gateways run in child processes of their own, as real gateways run elsewhere: in this
process they would share the interpreter lock with the dispatcher and the bare loop alike.

``--sms-latency-ms``, ``--smtp-latency-ms`` and ``--sms-max-concurrent`` give the peers a latency
and a cap (``bench.latency``, ``bench.peers``); the per-channel figures are from the
dispatcher's start. With a latency the raw loop is skipped unless ``--raw`` is given (with the
default concurrency it would take as long as the dispatcher again, and the ratio that matters
then is the one to the limit); ``--no-raw`` skips it at zero latency too. A raw loop that meets
the capped peer's 429 waits its Retry-After and sends again.

The raw loop keeps the configured concurrency in flight (``EMAIL_CONCURRENCY``/``SMS_CONCURRENCY``)
all the time; the dispatcher's lanes adapt theirs (``notifications.window``).

Prints one JSON line last: messages, seconds, msgs_per_s, raw_msgs_per_s, ratio, urgent_p99_ms
(and per channel: ``urgent_p99_ms_by_channel``), and the figures of ``bench.latency``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench import latency
from bench.databases import fresh_database
from bench.peers import Peers


def raw_rate(settings, count: int, sample: dict) -> float:
    """Messages per second through the bare adapters: the same asynchronous adapters the
    dispatcher's lanes use (``build_channels``: the twilio library's async client, the pooled
    aiosmtplib connections), the same number of requests in flight (``*_CONCURRENCY``), and the
    same messages as the dispatcher sends (``sample``: the queued e-mails' subject, texts and
    HTML, each sent in turn, and an SMS's text and its status-callback address), so that the
    gateways do the same work on both sides and the ratio measures what the dispatcher adds:
    claims, records, the window."""
    import asyncio

    from notifications.channels import build_channels
    from notifications.channels.base import OutgoingEmail, OutgoingSms, TransientFailure

    channels = build_channels(settings)
    emails, texts = count // 2, count - count // 2

    async def send_all() -> None:
        email = channels.email_async_factory(settings.email_concurrency)
        sms_sender = channels.sms_async_factory(settings.sms_concurrency)
        sms = OutgoingSms(to=sample["sms_to"], body=sample["sms_text"], status_callback=sample["status_callback"])

        bodies = sample["email_bodies"]
        shares = _split(emails, settings.email_concurrency)

        async def email_worker(share: int, first: int) -> None:
            for number in range(first, first + share):
                text, html = bodies[number % len(bodies)]
                await email.send_email(
                    OutgoingEmail(
                        to=sample["email_to"],
                        subject=sample["subject"],
                        text=text,
                        html=html,
                        message_id=f"<raw-{uuid.uuid4().hex}@bench>",
                    )
                )

        async def sms_worker(share: int) -> None:
            for _ in range(share):
                while True:
                    try:
                        await sms_sender.send_sms(sms)
                        break
                    except TransientFailure as failure:  # the capped peer's 429: not processed, sent again
                        if not failure.rate_limited:
                            raise
                        await asyncio.sleep(min(1.0, failure.retry_after or 0.2))

        try:
            await asyncio.gather(
                *(email_worker(share, first) for share, first in zip(shares, _starts(shares), strict=True)),
                *(sms_worker(share) for share in _split(texts, settings.sms_concurrency)),
            )
        finally:
            await email.aclose()
            await sms_sender.aclose()

    started = time.perf_counter()
    asyncio.run(send_all())
    return count / (time.perf_counter() - started)


def _starts(shares: list[int]) -> list[int]:
    """Where each share begins: 0, shares[0], shares[0] + shares[1], ..."""
    starts, at = [], 0
    for share in shares:
        starts.append(at)
        at += share
    return starts


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--urgent", type=int, default=50, help="urgent messages injected during the bulk")
    parser.add_argument("--raw", action=argparse.BooleanOptionalAction, default=None, help="run the raw loop")
    latency.add_arguments(parser)
    args = parser.parse_args()
    run_raw = args.raw if args.raw is not None else not (args.sms_latency_ms or args.smtp_latency_ms)

    from flask_migrate import upgrade

    from app import create_app
    from contacts.models import ContactPerson, Provider
    from core.extensions import db
    from notifications.dispatcher import Dispatcher
    from notifications.models import Channel, Message, MessageStatus, Priority
    from notifications.service import STATUS_CALLBACK_PATH, send

    peers = Peers(**latency.peer_options(args))
    info = peers.info
    workdir = Path(tempfile.mkdtemp(prefix="krisrutin-fanout-"))
    database_url, drop = fresh_database(args.database_url, workdir)
    try:
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "KRISRUTIN_ENV": "testing",
                "SECRET_KEY": "bench-" * 8,
                "LOG_LEVEL": "WARNING",
                "SMTP_HOST": info["smtp_host"],
                "SMTP_PORT": info["smtp_port"],
                "SMTP_SECURITY": "none",
                "MAIL_FROM": "valfardsteknik@example.se",
                "TWILIO_ACCOUNT_SID": info["account_sid"],
                "TWILIO_AUTH_TOKEN": info["auth_token"],
                "TWILIO_FROM": "Krisrutin",
                "TWILIO_API_BASE_URL": info["twilio_url"],
                "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
            }
        )
        settings = app.extensions["krisrutin.settings"]
        with app.app_context():
            upgrade()
            now = datetime.now(UTC)
            provider = Provider(name="Bench Omsorg AB", kind="private", is_active=True, created_at=now)
            db.session.add(provider)
            db.session.flush()
            contact = ContactPerson(
                provider_id=provider.id,
                name="Bench Kontakt",
                mobile="+46701740605",
                email="bench@example.se",
                services=[],
                is_active=True,
                created_at=now,
            )
            db.session.add(contact)
            db.session.commit()
            contact_id = contact.id

        with app.app_context():
            contact = db.session.get(ContactPerson, contact_id)
            now = datetime.now(UTC)
            for number in range(args.messages):
                channel = Channel.EMAIL if number % 2 == 0 else Channel.SMS
                send(
                    db_session=db.session,
                    kind="test.hello",
                    context={"name": "Bench", "link": f"https://krisrutin.example.se/l/{number}"},
                    channels=[channel],
                    priority=Priority.BULK,
                    idempotency_key=f"bench:{number}",
                    now=now,
                    contact=contact,
                    ref=("bench", "fanout"),
                )
                if number % 1000 == 999:
                    db.session.commit()
            db.session.commit()
            email = db.session.scalars(sa.select(Message).where(Message.channel == Channel.EMAIL.value).limit(1)).one()
            sms = db.session.scalars(sa.select(Message).where(Message.channel == Channel.SMS.value).limit(1)).one()
            sample = {
                # Every e-mail's own text and HTML (they differ by the link), sent in turn by the
                # raw loop: the SMTP adapters cache a body that repeats, so one sample sent again
                # and again would make the raw loop's e-mails cheaper than the dispatcher's.
                "email_bodies": [
                    tuple(row)
                    for row in db.session.execute(
                        sa.select(Message.body_text, Message.body_html).where(Message.channel == Channel.EMAIL.value)
                    )
                ],
                "email_to": email.to_address,
                "subject": email.subject or "",
                "sms_to": sms.to_address,
                "sms_text": sms.body_text,
                "status_callback": f"{settings.public_base_url}{STATUS_CALLBACK_PATH}?message={sms.id}",
            }
            db.session.rollback()

        # The raw rate is measured half before and half after the dispatcher's run, so that a
        # machine whose speed drifts (shared cores) weighs on both sides of the ratio alike.
        raw_first = args.messages // 2
        raw_before = raw_rate(settings, raw_first, sample) if run_raw else None
        smtp_before, twilio_before = peers.counts()
        gauges_before = peers.gauges()
        # Without the raw loop, how long the bulk should take at the limit, to spread the urgent ones.
        expected_seconds = (
            args.messages / raw_before
            if raw_before
            else max(
                args.messages / 2 / (settings.email_concurrency / max(args.smtp_latency_ms / 1000, 0.005)),
                args.messages / 2 / (settings.sms_concurrency / max(args.sms_latency_ms / 1000, 0.005)),
            )
        )

        dispatcher = Dispatcher(app, name="bench")
        load_before = latency.load_average()
        start_wall = time.time()
        cpu_before = time.process_time()
        started = time.perf_counter()
        dispatcher.start()
        stop_injecting = threading.Event()

        def inject_urgent() -> None:
            interval = max(0.01, expected_seconds / (args.urgent + 2))
            with app.app_context():
                contact = db.session.get(ContactPerson, contact_id)
                for number in range(args.urgent):
                    if stop_injecting.wait(interval):
                        return
                    send(
                        db_session=db.session,
                        kind="test.hello",
                        context={"name": "Brådskande", "link": "https://krisrutin.example.se/i/1"},
                        channels=[Channel.EMAIL if number % 2 else Channel.SMS],
                        priority=Priority.URGENT,
                        idempotency_key=f"urgent:{number}",
                        now=datetime.now(UTC),
                        contact=contact,
                        ref=("bench", "urgent"),
                    )
                    db.session.commit()

        injector = threading.Thread(target=inject_urgent)
        injector.start()
        total = args.messages + args.urgent
        deadline = time.monotonic() + 600
        # Done when the peers hold every message and the database shows none waiting. The peers
        # are asked first (a pipe round trip), so that the measuring loop does not load the
        # database server, which shares the two cores with the dispatcher, 20 times a second.
        expected_at_peers = smtp_before + twilio_before + total
        with app.app_context():
            while time.monotonic() < deadline:
                if sum(peers.counts()) < expected_at_peers or injector.is_alive():
                    time.sleep(0.05)
                    continue
                open_count = db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Message)
                    .where(Message.status.in_([MessageStatus.QUEUED.value, MessageStatus.SENDING.value]))
                )
                db.session.rollback()
                if open_count == 0 and not injector.is_alive():
                    break
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_before
            load_after = latency.load_average()
            stop_injecting.set()
            injector.join()
            dispatcher.stop()
            urgent = db.session.scalars(sa.select(Message).where(Message.ref_id == "urgent")).all()
            urgent_by_channel: dict[str, list[float]] = {}
            for message in urgent:
                if message.sent_at:
                    waited = (message.sent_at - message.created_at).total_seconds() * 1000
                    urgent_by_channel.setdefault(message.channel, []).append(waited)
            latencies = [waited for values in urgent_by_channel.values() for waited in values]
            failed = db.session.scalar(
                sa.select(sa.func.count()).select_from(Message).where(Message.status == MessageStatus.FAILED.value)
            )
            per_channel = dict(
                db.session.execute(sa.select(Message.channel, sa.func.count()).group_by(Message.channel)).all()
            )
        smtp_after, twilio_after = peers.counts()
        delivered = (smtp_after - smtp_before) + (twilio_after - twilio_before)
        figures = latency.figures(
            args=args,
            settings=settings,
            peers=peers,
            gauges_before=gauges_before,
            counts_before=(smtp_before, twilio_before),
            queued={"email": per_channel.get("email", 0), "sms": per_channel.get("sms", 0)},
            start_wall=start_wall,
            cpu_seconds=cpu_seconds,
        )
        raw_after = raw_rate(settings, args.messages - raw_first, sample) if run_raw else None
        raw = args.messages / (raw_first / raw_before + (args.messages - raw_first) / raw_after) if run_raw else None
        rate = total / seconds
        result = {
            "messages": args.messages,
            "database": database_url.split(":", 1)[0],
            "seconds": round(seconds, 2),
            "msgs_per_s": round(rate, 1),
            "raw_msgs_per_s": round(raw, 1) if raw else None,
            "raw_before_msgs_per_s": round(raw_before, 1) if raw_before else None,
            "raw_after_msgs_per_s": round(raw_after, 1) if raw_after else None,
            "ratio": round(rate / raw, 3) if raw else None,
            "urgent_p99_ms": round(latency.percentile(latencies, 99), 1),
            "urgent_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "urgent_p99_ms_by_channel": {
                channel: round(latency.percentile(values, 99), 1) for channel, values in urgent_by_channel.items()
            },
            "urgent": len(latencies),
            "arrived_at_gateways": delivered,
            "failed": failed,
            "email_workers": settings.email_concurrency,
            "sms_workers": settings.sms_concurrency,
            "load_average": [load_before, load_after],
            **figures,
        }
        latency.print_summary(result)
        print(json.dumps(result))
    finally:
        peers.stop()
        drop()


if __name__ == "__main__":
    main()
