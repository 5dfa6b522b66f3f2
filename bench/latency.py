"""What ``bench.fanout`` and ``bench.incident_fanout`` measure against gateways with latency (issue 18).

The options (:func:`add_arguments`) give the local peers a latency per request and the Twilio
peer a cap on concurrent requests (``bench.peers``). :func:`figures` turns what the peers saw and
what the database holds into the report, per channel:

- ``first_ms`` / ``last_s``: the first and the last acceptance, from the start (the dispatcher's
  start in ``bench.fanout``, the start of the POST in ``bench.incident_fanout``), by the peer's
  clock at the moment it answered (the peers run on this machine: one wall clock);
- ``per_s``: the channel's acceptances ÷ ``last_s``;
- ``limit_per_s`` and ``ratio_to_limit``: the in-flight cap ÷ the latency, the cap being the
  smaller of the dispatcher's workers for the channel (each holds one request in flight) and the
  peer's ``--sms-max-concurrent``; ``gateway_limit_per_s`` is the peer's cap alone ÷ the
  latency (the issue's "100 / 0.2 s = 500 per second"); none at zero latency;
- ``max_in_flight``: the most requests (SMS) or DATA commands (e-mail) the peer worked on at once;
- ``refused_429``: requests the Twilio peer refused above its cap;
- ``peer_answer_p50_ms`` / ``peer_answer_p90_ms``: the peer's own time from a request to its
  answer (``bench.peers``), for the accepted ones: the latency plus the peer's own queue. Well
  above the latency, the gateway itself (its process, its share of the two cores) was the bound,
  not the dispatcher;
- ``duplicates``: acceptances of a message already accepted (the same Message-ID, or the same
  outbox id in the SMS's status callback); ``lost``: messages queued in the outbox that the peer
  never accepted;
- ``cpu_s_per_message`` (overall): CPU seconds of this process (the dispatcher's threads, and in
  ``bench.incident_fanout`` the POST; the peers run in child processes and are not counted)
  ÷ the messages accepted, over the timed part;
- ``load_average``: the 1-minute load average at the start and at the end (this machine is shared);
- ``per_100ms`` (with ``--timeline``): the channel's acceptances in each 100 ms from the start,
  which shows a lane's slow start (16, then 64, then its window's rate) and any stall.
"""

from __future__ import annotations

import os


def add_arguments(parser) -> None:
    parser.add_argument("--sms-latency-ms", type=int, default=0, help="the Twilio peer waits this long per request")
    parser.add_argument("--smtp-latency-ms", type=int, default=0, help="the SMTP peer waits this long per message")
    parser.add_argument(
        "--sms-max-concurrent",
        type=int,
        default=None,
        help="the Twilio peer answers 429 (error 20429, Retry-After: 1) above this many requests in flight",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="report each channel's acceptances per 100 ms from the start (per_100ms): a lane's slow start and stalls",
    )


def peer_options(args) -> dict:
    return {
        "sms_latency_ms": args.sms_latency_ms,
        "smtp_latency_ms": args.smtp_latency_ms,
        "sms_max_concurrent": args.sms_max_concurrent,
    }


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, the nearest rank; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _percentile_ms(seconds: list[float], q: float) -> float | None:
    return round(percentile(seconds, q) * 1000, 1) if seconds else None


def timeline(accepted_at: list[float], start_wall: float, step: float = 0.1) -> list[int]:
    """Acceptances per ``step`` seconds from ``start_wall`` until the last one (an empty list for
    none): where a lane ramps up, runs at its window's rate, or stalls."""
    counts: list[int] = []
    for at in accepted_at:
        slot = max(0, int((at - start_wall) / step))
        if slot >= len(counts):
            counts.extend([0] * (slot + 1 - len(counts)))
        counts[slot] += 1
    return counts


def _channel(accepted_at, ids, queued, start_wall, latency_ms, workers, peer_cap, gauge, answers) -> dict:
    count = len(accepted_at)
    last = (max(accepted_at) - start_wall) if accepted_at else None
    cap = workers if peer_cap is None else min(workers, peer_cap)
    limit = cap / (latency_ms / 1000) if latency_ms else None
    per_s = count / last if last else None
    distinct = len(set(ids))
    return {
        "accepted": count,
        "first_ms": round((min(accepted_at) - start_wall) * 1000, 1) if accepted_at else None,
        "last_s": round(last, 2) if last is not None else None,
        "per_s": round(per_s, 1) if per_s else None,
        "latency_ms": latency_ms,
        "in_flight_cap": cap,
        "limit_per_s": round(limit, 1) if limit else None,
        "ratio_to_limit": round(per_s / limit, 3) if limit and per_s else None,
        "gateway_limit_per_s": round(peer_cap / (latency_ms / 1000), 1) if peer_cap and latency_ms else None,
        "max_in_flight": gauge["max_in_flight"],
        "refused_429": gauge["refused_429"],
        "peer_answer_p50_ms": _percentile_ms(answers, 50),
        "peer_answer_p90_ms": _percentile_ms(answers, 90),
        "duplicates": len(ids) - distinct,
        "lost": max(0, queued - distinct),
    }


def figures(*, args, settings, peers, gauges_before, counts_before, queued, start_wall, cpu_seconds) -> dict:
    """The report (see the module's docstring), from the peers' gauges and tally after the run.
    ``gauges_before`` / ``counts_before``: ``peers.gauges()`` and ``peers.counts()`` before the
    timed part (what other senders left there, e.g. ``bench.fanout``'s raw loop, is skipped);
    ``queued``: messages per channel in the outbox."""
    gauges = peers.gauges()
    emails, texts = peers.ask("tally")
    skip = (len(gauges_before["email"]["accepted_at"]), len(gauges_before["sms"]["accepted_at"]))
    email = _channel(
        gauges["email"]["accepted_at"][skip[0] :],
        [mid for mid, _ in emails[counts_before[0] :]],
        queued["email"],
        start_wall,
        args.smtp_latency_ms,
        settings.email_concurrency,
        None,
        gauges["email"],
        gauges["email"]["answer_seconds"][skip[0] :],
    )
    sms = _channel(
        gauges["sms"]["accepted_at"][skip[1] :],
        [mid for mid, _ in texts[counts_before[1] :]],
        queued["sms"],
        start_wall,
        args.sms_latency_ms,
        settings.sms_concurrency,
        args.sms_max_concurrent,
        gauges["sms"],
        gauges["sms"]["answer_seconds"][skip[1] :],
    )
    if getattr(args, "timeline", False):
        email["per_100ms"] = timeline(gauges["email"]["accepted_at"][skip[0] :], start_wall)
        sms["per_100ms"] = timeline(gauges["sms"]["accepted_at"][skip[1] :], start_wall)
    accepted = email["accepted"] + sms["accepted"]
    return {
        "email": email,
        "sms": sms,
        "cpu_seconds": round(cpu_seconds, 2),
        "cpu_s_per_message": round(cpu_seconds / accepted, 5) if accepted else None,
        "sms_max_concurrent": args.sms_max_concurrent,
    }


def print_summary(result: dict) -> None:
    """A few readable lines before the JSON line."""
    for name in ("email", "sms"):
        channel = result.get(name)
        if not channel:
            continue
        print(
            f"{name}: {channel['accepted']} accepted, first {channel['first_ms']} ms, last {channel['last_s']} s, "
            f"{channel['per_s']}/s (limit {channel['limit_per_s']}/s, ratio {channel['ratio_to_limit']}), "
            f"max in flight {channel['max_in_flight']}, 429s {channel['refused_429']}, "
            f"the peer's answers p50 {channel['peer_answer_p50_ms']} ms, p90 {channel['peer_answer_p90_ms']} ms, "
            f"duplicates {channel['duplicates']}, lost {channel['lost']}"
        )
    print(f"CPU {result.get('cpu_seconds')} s, {result.get('cpu_s_per_message')} s per message")
