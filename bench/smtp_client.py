"""SMTP client cost: ``python -m bench.smtp_client --messages 2000 [--pool 32] [--smtp-latency-ms 100]``.

Sends the same messages through the synchronous :class:`SmtpEmail` (one connection, one after
another, as one dispatcher worker does) and the asynchronous :class:`AsyncSmtpEmail` (a pool of
``--pool`` connections in one event loop, ``--pool`` sends in flight, as the issue-18 e-mail lane
will run it), alternating ``--rounds`` times, to the tests' SMTP server in a child process
(``bench.peers``), so that the server's CPU is not counted here.

Per run: ``cpu_ms_per_message``, the CPU time of this process (``time.process_time()``: every
thread of it; the sync adapter uses none besides the main one, the async one a worker thread for
``getfqdn`` and the default TLS context, once) over the sends, building each message included,
÷ the messages; ``peer_cpu_ms_per_message``, the same for the peer's child process (its
user + system time from ``/proc/PID/stat``), which shows when the peer, not the client, sets the
pace; ``msgs_per_s`` by the wall clock; ``peer_max_in_flight``, the most DATA commands the peer
worked on at once (the pool's sends in flight). The peer's count of arrived messages is checked
after each run (each message once). The message is a letter like the dispatcher's (a subject
with å, ä, ö; 0.9 KB of text and 1 KB of HTML, 2.9 KB on the wire), the same to every recipient
as a letter to many is; ``--distinct-letters`` makes each message's text and HTML its own (the
worst case for the adapters' cache of MIME bodies, ``notifications.channels.smtp_message``).
Prints a readable line per run and one JSON line last with the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

from bench.peers import Peers

TEXT = (
    "Hej!\n\nVälfärdsteknik i Exempelby kommun meddelar: trygghetslarmen i hemtjänstområde Norr har "
    "haft avbrott sedan kl. 06.40. Larm som görs nu når inte larmcentralen.\n\n"
    "Vad ni behöver göra:\n- Starta era lokala rutiner för avbrott.\n- Ring de brukare som har larm "
    "och som bor ensamma, och gör tätare besök enligt planen.\n- Svara på detta meddelande när ni "
    "har startat rutinerna.\n\n"
    * 2
    + "Översikt och kvittering: https://krisrutin.kommun.example.se/k/3f9a2c\n\nMed vänlig hälsning\n"
    "Välfärdsteknik, Exempelby kommun\n"
)
HTML = "<html><body>" + "".join(f"<p>{line}</p>" for line in TEXT.splitlines() if line) + "</body></html>"


def _peer_cpu(peers: Peers) -> float:
    """CPU seconds the SMTP peer's child process has used (Linux)."""
    with open(f"/proc/{peers.pid('smtp')}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _emails(count: int, run: str, *, distinct: bool = False):
    from notifications.channels.base import OutgoingEmail

    return [
        OutgoingEmail(
            to=f"kontakt{number % 97}@omsorg.example.se",
            subject="Avbrott i trygghetslarmen – starta era lokala rutiner",
            text=f"({run}-{number}) {TEXT}" if distinct else TEXT,
            html=f"<p>({run}-{number})</p>{HTML}" if distinct else HTML,
            message_id=f"<bench-{run}-{number}@krisrutin>",
        )
        for number in range(count)
    ]


def run_sync(settings, emails) -> tuple[float, float]:
    from notifications.channels.smtp import SmtpEmail

    adapter = SmtpEmail(settings)
    cpu, wall = time.process_time(), time.perf_counter()
    for email in emails:
        adapter.send_email(email)
    adapter.close()
    return time.process_time() - cpu, time.perf_counter() - wall


def run_async(settings, emails, pool: int) -> tuple[float, float]:
    from notifications.channels.smtp_async import AsyncSmtpEmail

    async def main() -> tuple[float, float]:
        adapter = AsyncSmtpEmail(settings, max_connections=pool)
        queue = iter(emails)

        async def sender() -> None:  # as the lane: ``pool`` sends in flight, each taking the next
            for email in queue:
                await adapter.send_email(email)

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(pool)))
        await adapter.aclose()
        return time.process_time() - cpu, time.perf_counter() - wall

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--pool", type=int, default=32, help="the async adapter's max_connections")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smtp-latency-ms", type=int, default=0, help="the SMTP peer waits this long per message")
    parser.add_argument("--sync-messages", type=int, default=None, help="fewer for the sync adapter (with a latency)")
    parser.add_argument("--distinct-letters", action="store_true", help="every message with a text of its own")
    args = parser.parse_args()

    from config.settings import load_settings

    peers = Peers(smtp_latency_ms=args.smtp_latency_ms)
    settings = load_settings(
        {
            "KRISRUTIN_ENV": "testing",
            "SMTP_HOST": peers.info["smtp_host"],
            "SMTP_PORT": str(peers.info["smtp_port"]),
            "SMTP_SECURITY": "none",
            "MAIL_FROM": '"Välfärdsteknik, Exempelby kommun" <valfardsteknik@kommun.example.se>',
        },
        environ={},
    )
    results: dict[str, list[dict]] = {"sync": [], "async": []}
    arrived = 0
    load_start = os.getloadavg()[0]
    try:
        for round_number in range(args.rounds):
            for mode in ("sync", "async"):
                count = (args.sync_messages or args.messages) if mode == "sync" else args.messages
                emails = _emails(count, f"{mode}{round_number}", distinct=args.distinct_letters)
                peer_cpu = _peer_cpu(peers)
                if mode == "sync":
                    cpu, wall = run_sync(settings, emails)
                else:
                    cpu, wall = run_async(settings, emails, args.pool)
                peer_cpu = _peer_cpu(peers) - peer_cpu
                arrived += count
                got = peers.counts()[0]
                assert got == arrived, f"{mode}: the peer holds {got} e-mails, expected {arrived}"
                result = {
                    "messages": count,
                    "cpu_ms_per_message": 1000 * cpu / count,
                    "peer_cpu_ms_per_message": 1000 * peer_cpu / count,
                    "msgs_per_s": count / wall,
                }
                results[mode].append(result)
                print(
                    f"{mode:5} round {round_number + 1}: {count} messages, "
                    f"{result['cpu_ms_per_message']:.3f} ms CPU per message "
                    f"(peer {result['peer_cpu_ms_per_message']:.3f}), "
                    f"{result['msgs_per_s']:.0f} msg/s"
                )
        tally = peers.tally()
        max_in_flight = peers.gauges()["email"]["max_in_flight"]  # the async runs': sync holds one
        assert tally["duplicates"] == 0, tally["duplicates"]
    finally:
        peers.stop()

    def median(mode: str, key: str) -> float:
        return round(statistics.median(r[key] for r in results[mode]), 3)

    print(
        json.dumps(
            {
                "messages": args.messages,
                "pool": args.pool,
                "smtp_latency_ms": args.smtp_latency_ms,
                "distinct_letters": args.distinct_letters,
                "rounds": args.rounds,
                "sync_cpu_ms_per_message": median("sync", "cpu_ms_per_message"),
                "async_cpu_ms_per_message": median("async", "cpu_ms_per_message"),
                "sync_peer_cpu_ms_per_message": median("sync", "peer_cpu_ms_per_message"),
                "async_peer_cpu_ms_per_message": median("async", "peer_cpu_ms_per_message"),
                "sync_msgs_per_s": median("sync", "msgs_per_s"),
                "async_msgs_per_s": median("async", "msgs_per_s"),
                "peer_max_in_flight": max_in_flight,
                "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
            }
        )
    )


if __name__ == "__main__":
    main()
