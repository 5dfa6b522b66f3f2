"""bench.service_fanout end to end, small: gunicorn and ``flask dispatcher run`` as real processes,
the letter posted over HTTP, every contact's e-mail and SMS at the peers exactly once, and the
processes gone afterwards."""

from __future__ import annotations

import subprocess

import pytest

from bench import service_fanout


def test_a_letter_posted_to_the_real_processes_reaches_every_contact_once_and_they_are_stopped(monkeypatch):
    started: list[subprocess.Popen] = []
    start = service_fanout._start

    def recording_start(command, env, logfile):
        process = start(command, env, logfile)
        started.append(process)
        return process

    monkeypatch.setattr(service_fanout, "_start", recording_start)
    args = service_fanout.build_parser().parse_args(
        ["--contacts", "20", "--providers", "4", "--workers", "1", "--timeline"]
    )

    result = service_fanout.run(args)

    assert result["complete"] and result["every_contact_once"]
    assert result["post_ms"] > 0 and result["failed"] == 0
    for channel in ("email", "sms"):
        assert result[channel]["duplicates"] == 0 and result[channel]["lost"] == 0
    assert result["sms"]["accepted"] == 20
    for channel in ("email", "sms"):  # every acceptance counted once, up to the 100 ms of the last
        timeline = result[channel]["per_100ms"]
        assert sum(timeline) == result[channel]["accepted"]
        assert timeline[-1] > 0 and abs(len(timeline) - result[channel]["last_s"] * 10) <= 1
    assert result["email"]["accepted"] == result["messages_queued"] - 20  # the contacts' and the supplier's
    assert result["dispatcher_cpu_s"] > 0  # the dispatcher process's own CPU, not this process's
    assert len(started) == 2 and all(process.poll() is not None for process in started)


def test_pairs_compare_runs_with_and_without_latency_back_to_back_in_alternating_order(monkeypatch):
    """The pairing alone (each run is the test above's): the runs' times are given, so that the
    ratios, the median and the count within 1.25x can be checked."""
    seen: list[tuple[int, int]] = []
    seconds = iter([8.0, 10.0, 11.0, 8.0])  # pair 1: 0 ms, then latency; pair 2: latency, then 0 ms

    def timed_run(args):
        seen.append((args.sms_latency_ms, args.smtp_latency_ms))
        return {
            "seconds": next(seconds),
            "every_contact_once": True,
            "database": "sqlite",
            "load_average": [1.0, 1.0],
            # what the peers would report: their answer times are their latencies and a little more
            "email": {"per_s": 300.0, "peer_answer_p50_ms": args.smtp_latency_ms + 60.0},
            "sms": {"per_s": 400.0, "peer_answer_p50_ms": args.sms_latency_ms + 1.0},
        }

    monkeypatch.setattr(service_fanout, "run", timed_run)
    args = service_fanout.build_parser().parse_args(
        ["--pairs", "2", "--sms-latency-ms", "200", "--smtp-latency-ms", "100"]
    )

    result = service_fanout.run_pairs(args)

    # 0 ms first in the first pair, the latency first in the second: drift weighs on both sides.
    assert seen == [(0, 0), (200, 100), (200, 100), (0, 0)]
    assert [(pair["first"], pair["zero_s"], pair["latency_s"]) for pair in result["pairs"]] == [
        ("zero", 8.0, 10.0),
        ("latency", 8.0, 11.0),
    ]
    assert [pair["ratio"] for pair in result["pairs"]] == [1.25, 1.375]
    assert result["median_ratio"] == round((1.25 + 1.375) / 2, 3)
    assert result["within_target"] == 1 and result["every_contact_once"]
    # The peers' answer times are the latency run's, to tell a run bound by a peer's own queue.
    assert all(pair["peer_answer_p50_ms"] == {"email": 160.0, "sms": 201.0} for pair in result["pairs"])


def test_pairs_without_a_latency_are_refused_with_a_message():
    args = service_fanout.build_parser().parse_args(["--pairs", "2"])
    with pytest.raises(SystemExit, match="give --sms-latency-ms or --smtp-latency-ms"):
        service_fanout.run_pairs(args)
