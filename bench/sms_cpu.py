"""CPU seconds per SMS of the Twilio adapters (issue 18): the synchronous ``TwilioSms`` (one
thread, one adapter, one send after another) against ``AsyncTwilioSms`` (one event loop, up to
``--max-in-flight`` sends at once, as the asynchronous lane runs it).

Both send the same ``--messages`` SMS (a Swedish text of 150 characters and a status callback)
to ``bench.peers``' Twilio peer, which runs in a child process: ``time.process_time()`` of this
process measures the client alone (the peer's CPU is not counted). A warm-up of 100 sends per
adapter (connections, imports, the SDK's lazily built objects) is not measured. ``--profile``
prints the async run's cProfile top functions (by own time, and by cumulative time) to stderr;
the figures of a profiled run are not comparable with an unprofiled one.

    python -m bench.sms_cpu --messages 2000 [--max-in-flight 100] [--sms-latency-ms 0] [--profile]

Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import time

from bench.peers import Peers
from config.settings import load_settings
from notifications.channels.base import OutgoingSms
from notifications.channels.twilio_sms import TwilioSms
from notifications.channels.twilio_sms_async import AsyncTwilioSms

BODY = (
    "Krisrutin: Larmtjänsten är nere i hela kommunen sedan kl. 14.05. "
    "Ring 08-123 456 vid akuta ärenden. Svara JA när ni har läst detta meddelande."
)
WARM_UP = 100


def _sms(n: int) -> OutgoingSms:
    return OutgoingSms(
        to=f"+4670{n % 10_000_000:07d}",
        body=BODY,
        status_callback=f"https://krisrutin.kommun.example.se/notifications/twilio/status?id={n}",
    )


def _settings(info: dict):
    return load_settings(
        {
            "KRISRUTIN_ENV": "testing",
            "TWILIO_ACCOUNT_SID": info["account_sid"],
            "TWILIO_AUTH_TOKEN": info["auth_token"],
            "TWILIO_FROM": "Krisrutin",
            "TWILIO_API_BASE_URL": info["twilio_url"],
        },
        environ={},
    )


def run_sync(settings, messages: int) -> dict:
    sender = TwilioSms(settings)
    try:
        for n in range(WARM_UP):
            sender.send_sms(_sms(n))
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(messages):
            sender.send_sms(_sms(n))
        return _figures(messages, time.process_time() - cpu, time.perf_counter() - wall)
    finally:
        sender.close()


async def _run_async(settings, messages: int, max_in_flight: int, profiler: cProfile.Profile | None) -> dict:
    sender = AsyncTwilioSms(settings, max_in_flight=max_in_flight)

    async def worker(numbers) -> None:
        for n in numbers:
            await sender.send_sms(_sms(n))

    async def send(count: int) -> None:
        # As the lane does: max_in_flight workers, each one send at a time.
        numbers = iter(range(count))
        await asyncio.gather(*(worker(numbers) for _ in range(max_in_flight)))

    try:
        await send(WARM_UP)
        if profiler is not None:
            profiler.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        await send(messages)
        figures = _figures(messages, time.process_time() - cpu, time.perf_counter() - wall)
        if profiler is not None:
            profiler.disable()
        return figures
    finally:
        await sender.aclose()


def _figures(messages: int, cpu_s: float, wall_s: float) -> dict:
    return {
        "cpu_s": round(cpu_s, 3),
        "cpu_ms_per_sms": round(cpu_s / messages * 1000, 3),
        "wall_s": round(wall_s, 3),
        "sms_per_s": round(messages / wall_s, 1),
    }


def _print_profile(profiler: cProfile.Profile) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(12)
        print(out.getvalue(), file=sys.stderr)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--max-in-flight", type=int, default=100)
    parser.add_argument("--sms-latency-ms", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile the async run (stderr)")
    args = parser.parse_args(argv)

    peers = Peers(sms_latency_ms=args.sms_latency_ms)
    try:
        settings = _settings(peers.info)
        load = round(os.getloadavg()[0], 2)
        sync = run_sync(settings, args.messages)
        profiler = cProfile.Profile() if args.profile else None
        concurrent = asyncio.run(_run_async(settings, args.messages, args.max_in_flight, profiler))
        arrived = peers.counts()[1]
    finally:
        peers.stop()
    if profiler is not None:
        _print_profile(profiler)
    report = {
        "messages": args.messages,
        "max_in_flight": args.max_in_flight,
        "sms_latency_ms": args.sms_latency_ms,
        "sync": sync,
        "async": concurrent,
        "async_cpu_ratio": round(concurrent["cpu_s"] / sync["cpu_s"], 2),
        "arrived": arrived,
        "expected": 2 * (args.messages + WARM_UP),
        "load_average": [load, round(os.getloadavg()[0], 2)],
    }
    print(f"sync  {sync['cpu_ms_per_sms']} ms CPU per SMS, {sync['sms_per_s']} SMS/s")
    print(f"async {concurrent['cpu_ms_per_sms']} ms CPU per SMS, {concurrent['sms_per_s']} SMS/s")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
